"""Redis going away and coming back (contract 2.5, 7.5): presence routes answer 503 ``redis_unavailable``,
``/readyz`` names ``redis``, the api keeps serving, and everything recovers by itself on the same URL.

Runs against a Redis of its own, so that stopping it leaves the suite's Redis alone."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from redis.asyncio import Redis

from tests.presence.conftest import Presence, create_conversation, running_presence
from tests.presence.support import subscribed, typing_events
from tests.support.api import running_api
from tests.support.problems import assert_problem
from threadline_devstack.servers import EmbeddedRedis
from threadline_shared.presence.posting import clear_typing_after_post


async def ready(presence: Presence) -> httpx.Response:
    return await presence.http.get("/readyz")


async def until_ready(presence: Presence, timeout: float = 15) -> None:
    async def poll() -> None:
        while (await ready(presence)).status_code != 200:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_presence_is_unavailable_while_redis_is_down_and_recovers_by_itself(
    pool: asyncpg.Pool, database_url: str, own_redis: EmbeddedRedis
) -> None:
    redis_url = own_redis.url()
    async with (
        running_api(database_url, redis_url) as api,
        running_presence(database_url, redis_url, None) as presence,
    ):
        alice = await api.persona("alice")
        plans = await create_conversation(pool, alice)
        assert (await presence.heartbeat(alice)).status_code == 204
        assert (await ready(presence)).json() == {"ready": True}

        own_redis.stop()

        assert_problem(await presence.heartbeat(alice), 503, "redis_unavailable")
        assert_problem(await presence.typing(alice, plans, 5), 503, "redis_unavailable")
        assert_problem(await presence.snapshot(alice, plans), 503, "redis_unavailable")
        not_ready = await ready(presence)
        assert not_ready.status_code == 503
        assert not_ready.json() == {"ready": False, "missing": ["redis"]}
        assert (await presence.http.get("/healthz")).status_code == 200
        # The api keeps serving: sessions live in PostgreSQL, rate limits fail open, posts skip typing.
        assert (await api.get("/api/auth/me", alice)).status_code == 200
        posted = await api.post(f"/api/threads/{plans}/root", alice, json={"content": "still here"})
        assert posted.status_code == 201, posted.text
        assert (await api.http.get("/readyz")).json() == {"ready": True}
        dead = Redis.from_url(redis_url, socket_connect_timeout=0.5)
        try:
            assert await clear_typing_after_post(dead, plans, alice.id) == []
        finally:
            await dead.aclose()

        own_redis.start()  # same port, empty data

        await until_ready(presence)
        async with subscribed(redis_url, plans) as subscriber:
            assert (await presence.heartbeat(alice)).status_code == 204  # state was lost: online again
            assert (await presence.typing(alice, plans, 1)).status_code == 204
            # The sweeper recovered too: the one-second entry expires into a stop (real clock here).
            received = await subscriber.wait_for(3, timeout=10)

        assert [envelope["type"] for _, envelope in received] == [
            "presence.update",
            "typing.update",
            "typing.update",
        ]
        start, stop = (payload for _, payload in typing_events(received))
        assert stop["expires_at"] >= start["expires_at"]
        snapshot = (await presence.snapshot(alice, plans)).json()
        assert snapshot["participants"][0]["status"] == "online"
