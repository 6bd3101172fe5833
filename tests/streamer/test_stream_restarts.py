"""The streamer process going away (contract 6.6, 6.8): killed outright, its clients resume on a new process
with Last-Event-ID and miss nothing, events written meanwhile included; on SIGTERM it ends every stream at
once (clients see the end, not a keepalive timeout) and exits cleanly."""

from __future__ import annotations

import asyncio
import signal
import time

import asyncpg
import httpx
import pytest

from tests.support.api import Api
from tests.support.conversations import add_participant, create_conversation
from tests.support.messages import post_root
from tests.support.sse import open_stream
from tests.support.stack import Stack, start_again
from tests.support.traffic import following, last_seq, post_replies, visible_seqs
from threadline_devstack.services import ServiceProcess

pytestmark = pytest.mark.e2e
SHUTDOWN_BOUND_SECONDS = 6.0
"""How soon after SIGTERM both streams must have ended: at once in practice (uvicorn checks its exit flag
every 0.1 s), with room for a contended host."""


@pytest.fixture
def streamer(stack: Stack) -> ServiceProcess:
    """The stack's streamer (the ``stack`` fixture has started it again if an earlier test stopped it)."""
    return stack.processes["streamer"]


def popen(process: ServiceProcess) -> int:
    assert process.proc is not None
    return process.proc.pid


@pytest.mark.timeout(120)  # fixtures start processes; the default 60 s covers them too
async def test_after_a_kill_9_clients_resume_on_a_new_streamer_and_miss_nothing(
    stack: Stack, api: Api, pool: asyncpg.Pool, streamer: ServiceProcess
) -> None:
    alice, bob, carol = [await api.persona(name) for name in ("alice", "bob", "carol")]
    conversation = await create_conversation(api, alice, is_group=True, assistant_replies=False)
    for member in (bob, carol):
        await add_participant(api, alice, conversation, member)
    root = await post_root(api, alice, conversation, "are you there?")
    begin = await last_seq(pool, conversation)

    async with following(stack.url("streamer"), conversation, bob, begin) as follower:
        async with asyncio.timeout(60), asyncio.TaskGroup() as tasks:
            writing = tasks.create_task(post_replies(api, [alice, carol], root, 60, pause=0.05))
            await follower.wait_for(begin + 10, timeout=15)
            assert streamer.proc is not None
            streamer.proc.kill()
            await asyncio.to_thread(streamer.proc.wait, 10)
            killed_at = time.monotonic()
            await asyncio.sleep(0.5)  # writes go on while no streamer runs
            await start_again(streamer)
            restarted_at = time.monotonic()
            posted = await writing
        expected = await visible_seqs(pool, conversation, bob, begin)
        await follower.wait_for(expected[-1], timeout=20)
        await asyncio.sleep(0.3)  # a duplicate would arrive now

    assert follower.ids == expected, "each event once, in order, across the crash"
    assert follower.connections >= 2, "the client reconnected to the new process"
    assert any(killed_at < p.at < restarted_at for p in posted), "replies were committed during the outage"


async def test_sigterm_ends_open_streams_at_once_and_the_streamer_exits_cleanly(
    stack: Stack, api: Api, streamer: ServiceProcess
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation = await create_conversation(api, alice, is_group=True, assistant_replies=False)
    await add_participant(api, alice, conversation, bob)
    url = stack.url("streamer")
    async with (
        open_stream(url, conversation, alice.token) as alice_stream,
        open_stream(url, conversation, bob.token) as bob_stream,
    ):
        await alice_stream.until("presence.update")
        await bob_stream.until("presence.update")
        assert streamer.proc is not None
        streamer.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        for stream in (alice_stream, bob_stream):
            with pytest.raises(EOFError):
                while True:
                    # Keepalives (every 2 s) are skipped: a stream left open ends in a TimeoutError here.
                    await stream.next(timeout=SHUTDOWN_BOUND_SECONDS)
        ended_after = time.monotonic() - signalled
    exit_code = await asyncio.to_thread(streamer.proc.wait, 10)

    assert ended_after < SHUTDOWN_BOUND_SECONDS
    assert exit_code == 0
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=url) as client:
            await client.get("/healthz")
