"""The presence application itself: its routes in OpenAPI, readiness, and the HTTP rate limit that runs
before the route's own parsing (contract 1.7 step 5, 8.2)."""

from __future__ import annotations

import asyncpg

from tests.presence.conftest import Presence, create_conversation, running_presence
from tests.support.api import Api
from tests.support.problems import assert_problem


async def test_openapi_describes_the_three_routes(presence: Presence) -> None:
    document = (await presence.http.get("/openapi.json")).json()

    assert {"/api/presence/heartbeat", "/api/typing", "/api/conversations/{conversation_id}/presence"} <= set(
        document["paths"]
    )
    assert set(document["paths"]["/api/presence/heartbeat"]) == {"post"}
    assert set(document["paths"]["/api/conversations/{conversation_id}/presence"]) == {"get"}


async def test_ready_with_database_and_redis(presence: Presence) -> None:
    response = await presence.http.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"ready": True}


async def test_presence_routes_carry_the_default_rate_limit_headers(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)

    for response in (
        await presence.heartbeat(alice),
        await presence.typing(alice, plans, 3),
        await presence.snapshot(alice, plans),
    ):
        assert response.headers["x-ratelimit-profile"] == "default"
        assert response.headers["ratelimit-limit"] == "100"


async def test_the_rate_limit_comes_before_parsing(api: Api, database_url: str, redis_url: str) -> None:
    alice = await api.persona("alice")
    # One request per 100 s after a burst of 3 (slow enough that the buckets' Redis TTLs, which run in real
    # time, outlast the test on any machine).
    async with running_presence(
        database_url, redis_url, api.clock, rate_limit_default_rps=0.01, rate_limit_default_burst=3
    ) as presence:
        for remaining in ("2", "1", "0"):
            response = await presence.heartbeat(alice)
            assert response.status_code == 204
            assert response.headers["ratelimit-remaining"] == remaining

        denied = await presence.heartbeat(alice, {"status": "busy"})

    problem = assert_problem(denied, 429, "RGP.RATE_LIMITED")
    assert problem["details"]["retry_after_seconds"] == 100
    assert denied.headers["x-ratelimit-profile"] == "default"
