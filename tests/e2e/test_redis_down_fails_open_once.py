"""With Redis down, a request that a lean path decided (failing its rate limit open, 8.2) and then handed on
to the full application is not decided again there: ``threadline_rate_limit_fail_open_total`` counts it
once, and it waits for Redis once. The services run in-process on real sockets, on a Redis of their own
that the test stops (``pool`` empties the tables after each test)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from tests.presence.conftest import running_presence
from tests.streamer.test_connect_fastpath import running_streamer
from tests.support.api import running_api
from tests.support.conversations import add_participant, create_conversation
from tests.support.problems import assert_problem
from threadline_devstack.servers import EmbeddedRedis


def failed_open() -> float:
    """``threadline_rate_limit_fail_open_total`` over every profile, in this process."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "threadline_rate_limit_fail_open"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


@pytest.mark.parametrize("protocol", ["own", "httptools"])
async def test_a_heartbeat_handed_on_after_failing_open(
    pool: asyncpg.Pool, database_url: str, own_redis: EmbeddedRedis, protocol: str
) -> None:
    """The lean path failed the limit open, then met Redis down itself: the full path answers the 503."""
    redis_url = own_redis.url()
    given: dict[str, Any] = {} if protocol == "own" else {"protocol": protocol}
    async with (
        running_api(database_url, redis_url) as api,
        running_presence(database_url, redis_url, None, **given) as presence,
    ):
        alice = await api.persona("alice")
        assert (await presence.heartbeat(alice)).status_code == 204
        own_redis.stop()
        before = failed_open()

        assert_problem(await presence.heartbeat(alice), 503, "redis_unavailable")

        assert failed_open() - before == 1


async def test_a_post_handed_on_after_failing_open(
    pool: asyncpg.Pool, database_url: str, own_redis: EmbeddedRedis
) -> None:
    """A viewer's post: the lean path failed the limit open, then declined the post; the full path answers
    the 403."""
    redis_url = own_redis.url()
    async with running_api(database_url, redis_url) as api:
        alice, bob = await api.persona("alice"), await api.persona("bob")
        conversation = await create_conversation(api, alice, is_group=True)
        await add_participant(api, alice, conversation, bob, role="viewer")
        own_redis.stop()
        before = failed_open()

        refused = await api.post(f"/api/threads/{conversation}/root", bob, json={"content": "hi"})

        assert_problem(refused, 403, "RGP.RBAC.FORBIDDEN")
        assert failed_open() - before == 1


async def test_a_connect_handed_on_after_failing_open(
    pool: asyncpg.Pool, database_url: str, own_redis: EmbeddedRedis
) -> None:
    """The lean connect fails the limit open and is accepted there, without a snapshot (Redis down): decided
    once. (A connect it hands on after deciding, as when a membership change overtakes its read, carries the
    decision as the heartbeat and the post above do.)"""
    redis_url = own_redis.url()
    async with (
        running_api(database_url, redis_url) as api,
        running_streamer(database_url, redis_url, api.clock, rate_limit_enabled=True) as (url, _),
        httpx.AsyncClient(base_url=url) as streams,
    ):
        alice = await api.persona("alice")
        conversation = await create_conversation(api, alice)
        own_redis.stop()
        before = failed_open()

        async with streams.stream(
            "GET", f"/api/stream/conversations/{conversation}", headers=alice.bearer
        ) as response:
            assert response.status_code == 200
            await response.aclose()

        assert failed_open() - before == 1
