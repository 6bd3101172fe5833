"""The HTTP rate limit of a request (contract 8.2, 8.5, 8.6): step 5 of the check order, after
authentication and CSRF, on ``/api`` requests only and never on ``OPTIONS``.

Exactly one HTTP profile applies: the best matching assignment; else, for ``POST /api/auth/login``, the
login throttle of the route itself (3.10) stands for it; else ``default``. Buckets are per user when the
request is authenticated, else per client IP.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from starlette.requests import Request
from starlette.types import Scope

from threadline_shared.errors import RateLimited
from threadline_shared.limiter import Decision, Limiter, Rate
from threadline_shared.params import client_ip
from threadline_shared.ratelimit.rules import DEFAULT_PROFILE, RuleBook
from threadline_shared.sessions import Principal

LOGIN_PATH = "/api/auth/login"


@dataclass(frozen=True, slots=True)
class LimitTarget:
    """The one bucket a request is counted in."""

    profile: str
    route: str
    subject: str
    rate: Rate


def http_limit_route(book: RuleBook, method: str, path: str) -> tuple[str, str, Rate] | None:
    """The request's HTTP profile, bucket route and rate (8.2), or None when no HTTP limit applies to it."""
    if method == "OPTIONS" or not path.startswith("/api/"):
        return None
    assignment = book.rules.assignment_for(method, path)
    if assignment is not None and assignment.profile in book.rules.profiles:
        profile = assignment.profile
        return profile, f"{method} {assignment.pattern.text}", book.rules.profiles[profile]
    if method == "POST" and path.rstrip("/") == LOGIN_PATH:
        return None  # the login route applies its own auth.login buckets (3.10)
    return DEFAULT_PROFILE, f"{method} {path}", book.default


def limit_subject(user_id: UUID | None, ip: str) -> str:
    """Buckets are per user when the request is authenticated, else per client IP (8.5)."""
    return f"u:{user_id}" if user_id is not None else f"ip:{ip}"


def http_limit_target(
    book: RuleBook, method: str, path: str, principal: Principal | None, ip: str
) -> LimitTarget | None:
    """The request's HTTP profile and bucket (8.2, 8.5), or None when no HTTP limit applies to it."""
    route = http_limit_route(book, method, path)
    if route is None:
        return None
    profile, route_key, rate = route
    return LimitTarget(
        profile, route_key, limit_subject(principal.user_id if principal is not None else None, ip), rate
    )


async def decide_http_limits(
    book: RuleBook, limiter: Limiter, method: str, requests: Sequence[tuple[str, UUID]]
) -> list[Decision | None]:
    """The HTTP limit of many authenticated ``(path, user id)`` requests of one method (a lean path's batch),
    in order, with one script call; None where no limit applies. Fails open as :meth:`Limiter.check_many`."""
    if not limiter.enabled:
        return [None] * len(requests)
    buckets: list[tuple[str, str, str, Rate]] = []
    limited: list[int] = []
    for index, (path, user_id) in enumerate(requests):
        route = http_limit_route(book, method, path)
        if route is not None:
            profile, route_key, rate = route
            buckets.append((profile, route_key, limit_subject(user_id, ""), rate))
            limited.append(index)
    decisions: list[Decision | None] = [None] * len(requests)
    for index, decision in zip(limited, await limiter.check_many(buckets), strict=True):
        decisions[index] = decision
    return decisions


DECIDED = "threadline.rate_limit_decision"
"""Scope key of the HTTP rate-limit decision already made for this request by a lean path that then handed
the request on: a :class:`Decision`, or None when no limit applied or Redis failed and it failed open. The
request is not charged, nor Redis asked, a second time (a failing Redis would fail it open twice, counting
it twice and waiting for Redis twice)."""


class Undecided(enum.Enum):
    """No HTTP rate-limit decision was made for a request (its lean batch stopped before the limit)."""

    UNDECIDED = "undecided"


UNDECIDED = Undecided.UNDECIDED


def hand_on_decision(scope: Scope, decision: Decision | Undecided | None) -> None:
    """Put the decision made for a request handed on to the full application in its scope (DECIDED)."""
    if decision is not UNDECIDED:
        scope[DECIDED] = decision


async def check_http_limit(request: Request, principal: Principal | None) -> None:
    """Decide the request's HTTP profile; raise 429 or remember the headers for the response."""
    decision: Decision | Undecided | None = request.scope.get(DECIDED, UNDECIDED)
    if decision is UNDECIDED:
        book: RuleBook | None = getattr(request.state, "rules", None)
        limiter: Limiter | None = getattr(request.state, "limiter", None)
        if book is None or limiter is None:
            return
        target = http_limit_target(book, request.method, request.url.path, principal, client_ip(request))
        if target is None:
            return
        decision = await limiter.check(target.profile, target.route, target.subject, target.rate)
    if decision is None:
        return
    if not decision.allowed:
        raise RateLimited(
            details={"retry_after_seconds": decision.retry_after_seconds}, headers=decision.headers()
        )
    request.state.rate_limit_headers = decision.headers()
