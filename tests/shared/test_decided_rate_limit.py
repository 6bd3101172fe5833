"""A request whose HTTP rate limit a lean path already decided (and then handed on) is not charged again:
``check_http_limit`` applies the decision it carries (threadline_shared.ratelimit.http.DECIDED)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from threadline_shared.errors import RateLimited
from threadline_shared.limiter import Decision
from threadline_shared.ratelimit.http import DECIDED, check_http_limit


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
