"""PostgreSQL restarting under a live stream (contract 6.9, DESIGN 2.4): the streamer's LISTEN connection
and pool come back by themselves, it catches up from the log, and the client gets every event exactly once.

This module runs its own PostgreSQL (the session's server is shared by every module), on a fixed port so that
it comes back where the services expect it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.streamer.conftest import STREAM_ENV
from tests.support.api import Api, remote_api
from tests.support.conversations import add_participant, create_conversation
from tests.support.messages import post_root
from tests.support.servers import SuiteServers
from tests.support.stack import Stack, running_stack
from tests.support.traffic import following, last_seq, post_replies, visible_seqs
from threadline_db import migrate_url
from threadline_devstack.servers import EmbeddedPostgres, free_port
from threadline_shared.db import create_pool

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("restarting-postgres"), port=free_port(), durable=False)
    server.start()
    try:
        asyncio.run(migrate_url(server.url()))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def own_stack(
    postgres: EmbeddedPostgres, servers: SuiteServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with running_stack(
        postgres.url(), servers.redis_url, tmp_path_factory.mktemp("stack"), STREAM_ENV
    ) as started:
        yield started


@pytest.fixture
async def own_api(own_stack: Stack) -> AsyncIterator[Api]:
    async with remote_api(own_stack.url("api")) as running:
        yield running


async def restart(postgres: EmbeddedPostgres, down_for: float) -> tuple[float, float]:
    """Stop PostgreSQL (fast shutdown: every session is cut), wait, start it on the same port; returns when
    it went down and when it accepted connections again."""
    await asyncio.to_thread(postgres.stop)
    stopped = time.monotonic()
    await asyncio.sleep(down_for)
    await asyncio.to_thread(postgres.start)
    return stopped, time.monotonic()


@pytest.mark.timeout(120)  # fixtures start processes; the default 60 s covers them too
async def test_a_stream_gets_every_event_once_across_a_postgres_restart(
    postgres: EmbeddedPostgres, own_stack: Stack, own_api: Api
) -> None:
    api = own_api
    alice, bob, carol = [await api.persona(name) for name in ("alice", "bob", "carol")]
    conversation = await create_conversation(api, alice, is_group=True, assistant_replies=False)
    for member in (bob, carol):
        await add_participant(api, alice, conversation, member)
    root = await post_root(api, alice, conversation, "before the restart")
    pool = await create_pool(postgres.url(), min_size=1, max_size=2)
    try:
        begin = await last_seq(pool, conversation)
    finally:
        await pool.close()

    async with following(own_stack.url("streamer"), conversation, bob, begin) as follower:
        async with asyncio.timeout(90), asyncio.TaskGroup() as tasks:
            writing = tasks.create_task(post_replies(api, [alice, carol], root, 80, pause=0.05))
            await follower.wait_for(begin + 10, timeout=15)
            stopped, started = await restart(postgres, down_for=1.5)
            posted = await writing
        pool = await create_pool(postgres.url(), min_size=1, max_size=2)
        try:
            expected = await visible_seqs(pool, conversation, bob, begin)
        finally:
            await pool.close()
        await follower.wait_for(expected[-1], timeout=30)
        await asyncio.sleep(0.3)  # a duplicate would arrive now

    assert follower.ids == expected, "each event once, in order, across the restart"
    assert any(p.at < stopped for p in posted) and any(p.at > started for p in posted)
    assert own_stack.processes["streamer"].exited() is None
    assert own_stack.processes["streamer"].is_ready()
