"""Login throttling (contract 3.10): two GCRA buckets of profile ``auth.login``, N per minute each, one per
client IP (checked before the body is read) and one per account (checked before the password is verified)."""

from __future__ import annotations

from starlette.requests import Request

from threadline_shared.errors import RateLimited
from threadline_shared.limiter import Decision, Limiter, Rate
from threadline_shared.settings import Settings

PROFILE = "auth.login"
ROUTE = "login"


def _rate(per_minute: int) -> Rate:
    return Rate(requests_per_second=per_minute / 60, burst=per_minute)


def _deny(decision: Decision) -> RateLimited:
    return RateLimited(
        details={"retry_after_seconds": decision.retry_after_seconds}, headers=decision.headers()
    )


async def check_ip(request: Request, ip: str) -> Decision | None:
    settings: Settings = request.app.state.settings
    limiter: Limiter = request.state.limiter
    decision = await limiter.check(PROFILE, ROUTE, f"ip:{ip}", _rate(settings.login_per_ip_per_minute))
    if decision is not None and not decision.allowed:
        raise _deny(decision)
    return decision


async def check_account(request: Request, account: str) -> Decision | None:
    settings: Settings = request.app.state.settings
    limiter: Limiter = request.state.limiter
    decision = await limiter.check(
        PROFILE, ROUTE, f"acct:{account}", _rate(settings.login_per_account_per_minute)
    )
    if decision is not None and not decision.allowed:
        raise _deny(decision)
    return decision


def remember(request: Request, decision: Decision | None) -> None:
    """Every response of the request, errors included, carries this decision's headers (contract 8.6)."""
    if decision is not None:
        request.state.rate_limit_headers = decision.headers()


def tightest(*decisions: Decision | None) -> Decision | None:
    """The decision with the fewest requests left: its headers describe the request's limit."""
    made = [decision for decision in decisions if decision is not None]
    return min(made, key=lambda decision: decision.remaining, default=None)
