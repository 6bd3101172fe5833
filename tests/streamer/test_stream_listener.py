"""Losing the LISTEN connection (contract 6.9, 2.5; DESIGN 2.4): the streamer reconnects with backoff and
catches up from the log, so an open stream still gets every event exactly once; readiness reports the
listener missing while it is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.support.api import Api
from tests.support.conversations import add_participant, create_conversation
from tests.support.messages import post_root
from tests.support.servers import SuiteServers
from tests.support.stack import Stack
from tests.support.traffic import following, last_seq, post_replies, visible_seqs, wait_until
from threadline_streamer.listener import APPLICATION_NAME

pytestmark = pytest.mark.e2e

_LISTENER_PIDS = """
SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()
"""


async def listener_pid(pool: asyncpg.Pool, *, other_than: int | None = None, timeout: float = 15.0) -> int:
    """The pid of the streamer's LISTEN backend (waiting for one other than ``other_than``)."""
    async with asyncio.timeout(timeout):
        while True:
            pids = [row["pid"] for row in await pool.fetch(_LISTENER_PIDS, APPLICATION_NAME)]
            assert len(pids) <= 1, f"one LISTEN connection per streamer, found {pids}"
            if pids and pids[0] != other_than:
                return int(pids[0])
            await asyncio.sleep(0.02)


async def terminate(pool: asyncpg.Pool, pid: int) -> None:
    assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)


@asynccontextmanager
async def refusing_connections(servers: SuiteServers, database_url: str) -> AsyncIterator[None]:
    """The module's database accepts no new connection (superusers included); open ones keep working."""
    name = urlsplit(database_url).path.lstrip("/")
    admin = await asyncpg.connect(servers.database_url("postgres"))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            yield
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


async def readiness(stack: Stack) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient(base_url=stack.url("streamer"), timeout=5) as client:
        response = await client.get("/readyz")
    body: dict[str, object] = response.json()
    return response.status_code, body


async def missing(stack: Stack) -> object:
    status, body = await readiness(stack)
    assert status == 503 and body["ready"] is False, body
    return body["missing"]


async def not_ready(stack: Stack) -> bool:
    return (await readiness(stack))[0] == 503


async def is_ready(stack: Stack) -> bool:
    return (await readiness(stack))[0] == 200


@pytest.mark.timeout(120)  # fixtures start processes; the default 60 s covers them too
async def test_an_open_stream_gets_every_event_once_while_the_listen_connection_is_cut_three_times(
    stack: Stack, api: Api, pool: asyncpg.Pool
) -> None:
    alice, bob, carol = [await api.persona(name) for name in ("alice", "bob", "carol")]
    conversation = await create_conversation(api, alice, is_group=True, assistant_replies=False)
    for member in (bob, carol):
        await add_participant(api, alice, conversation, member)
    root = await post_root(api, alice, conversation, "still here?")
    start = await last_seq(pool, conversation)
    outages: list[tuple[float, float]] = []
    cuts = 0

    async def after_the_cuts_due(n: int) -> None:
        """Replies 30-59 wait for the first cut, 60-89 for the second: some are posted during an outage
        however fast the api is."""
        while cuts < n // 30:
            await asyncio.sleep(0.005)

    async with following(stack.url("streamer"), conversation, bob, start) as follower:
        async with asyncio.timeout(60), asyncio.TaskGroup() as tasks:
            writing = tasks.create_task(
                post_replies(api, [alice, bob, carol], root, 90, gate=after_the_cuts_due)
            )
            pid = await listener_pid(pool)
            for _ in range(3):
                await asyncio.sleep(0.3)
                cut = time.monotonic()
                cuts += 1
                await terminate(pool, pid)
                pid = await listener_pid(pool, other_than=pid)
                outages.append((cut, time.monotonic()))
            posted = await writing
        expected = await visible_seqs(pool, conversation, bob, start)
        await follower.wait_for(expected[-1], timeout=15)
        await asyncio.sleep(0.3)  # a duplicate would arrive now

    assert follower.ids == expected, "each event once, in order"
    assert follower.connections == 1, "the stream itself never broke"
    during = [p for p in posted if any(cut < p.at < back for cut, back in outages)]
    assert during, "some replies were committed while the listener was down"
    assert (await readiness(stack))[0] == 200


async def test_readiness_reports_the_listener_missing_until_it_reconnects(
    stack: Stack, api: Api, pool: asyncpg.Pool, servers: SuiteServers, database_url: str
) -> None:
    assert await readiness(stack) == (200, {"ready": True})
    async with refusing_connections(servers, database_url):
        await terminate(pool, await listener_pid(pool))
        await wait_until(lambda: not_ready(stack), timeout=10)
        assert await missing(stack) == ["listener"]
        await asyncio.sleep(1.0)  # a few failed reconnection attempts
        assert "listener" in await missing(stack)
    await wait_until(lambda: is_ready(stack), timeout=15)
    assert await readiness(stack) == (200, {"ready": True})
    await listener_pid(pool)
