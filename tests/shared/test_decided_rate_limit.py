"""A request whose HTTP rate limit a lean path already decided (and then handed on) is not charged again:
``check_http_limit`` applies the decision it carries (threadline_shared.ratelimit.http.DECIDED)."""

from __future__ import annotations

import asyncpg
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request

from threadline_shared.errors import RateLimited
from threadline_shared.limiter import Decision, Limiter
from threadline_shared.ratelimit.http import DECIDED, check_http_limit
from threadline_shared.ratelimit.rules import RuleBook
from threadline_shared.settings import Settings


def request_carrying(decision: Decision) -> Request:
    # No limiter and no rules in the request's state: a charge could not even be attempted.
    scope = {"type": "http", "method": "POST", "path": "/api/presence/heartbeat", "headers": [], "state": {}}
    scope[DECIDED] = decision
    return Request(scope)


async def test_an_allowed_decision_is_applied_without_a_new_charge() -> None:
    request = request_carrying(Decision(True, "default", 10, 4, 1, None))
    await check_http_limit(request, None)
    assert request.state.rate_limit_headers["RateLimit-Remaining"] == "4"


async def test_a_denied_decision_is_the_429() -> None:
    request = request_carrying(Decision(False, "default", 10, 0, 3, 3))
    with pytest.raises(RateLimited) as raised:
        await check_http_limit(request, None)
    assert raised.value.headers["Retry-After"] == "3"


def request_with_a_limiter(settings: Settings, book: RuleBook, limiter: Limiter) -> Request:
    app = Starlette()
    app.state.settings = settings
    scope = {
        "type": "http",
        "app": app,
        "method": "GET",
        "path": "/api/users",
        "headers": [],
        "client": ("127.0.0.1", 5000),
        "state": {"rules": book, "limiter": limiter},
    }
    return Request(scope)


async def test_a_request_carrying_none_is_decided_already_and_not_charged(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> None:
    """None under DECIDED: the lean path found no limit, or failed open; the full path asks Redis nothing."""
    settings = Settings.load(env="test", database_url=database_url, redis_url=redis_url)
    book, limiter = RuleBook(pool, settings), Limiter(redis, timeout_ms=1000)
    undecided = request_with_a_limiter(settings, book, limiter)
    await check_http_limit(undecided, None)
    assert undecided.state.rate_limit_headers["X-RateLimit-Profile"] == "default"  # charged: the control
    [bucket] = await redis.keys("tl:rl:*")
    tat = await redis.get(bucket)

    carrying_none = request_with_a_limiter(settings, book, limiter)
    carrying_none.scope[DECIDED] = None
    await check_http_limit(carrying_none, None)

    assert not hasattr(carrying_none.state, "rate_limit_headers")
    assert await redis.keys("tl:rl:*") == [bucket]
    assert await redis.get(bucket) == tat  # the bucket was not charged again
