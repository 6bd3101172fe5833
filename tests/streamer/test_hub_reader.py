"""The hub's reads of the event log (threadline_streamer.hub): on one connection it holds across rounds,
replaced after a failure, and given back to the pool when the hub stops."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from threadline_streamer.hub import Channel, Hub


async def test_rounds_read_on_one_held_connection_replaced_after_a_failure(pool: asyncpg.Pool) -> None:
    hub = Hub(pool, queue_size=8)
    channel = Channel(uuid.uuid4(), 0)  # no such conversation: no rows
    assert await hub._fetch([channel]) == []
    held = hub._reader
    assert held is not None
    assert await hub._fetch([channel]) == [] and hub._reader is held
    backend = held.get_server_pid()

    await hub._drop_reader(broken=True)  # as after a failed read
    assert hub._reader is None
    assert await hub._fetch([channel]) == []
    assert hub._reader is not None and hub._reader.get_server_pid() != backend
    await hub._drop_reader(broken=False)


async def test_a_stopped_hub_gives_its_connection_back(pool: asyncpg.Pool) -> None:
    hub = Hub(pool, queue_size=8)
    channel = Channel(uuid.uuid4(), 0)
    hub.channels[channel.conversation_id] = channel
    task = asyncio.create_task(hub.run())
    hub.catch_up_all()  # a round: the hub takes its connection
    async with asyncio.timeout(5):
        while hub._reader is None:
            await asyncio.sleep(0.01)
    idle_while_running = pool.get_idle_size()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hub._reader is None
    assert pool.get_idle_size() == idle_while_running + 1


async def test_a_round_whose_connection_was_cut_is_read_again_on_a_new_one(pool: asyncpg.Pool) -> None:
    hub = Hub(pool, queue_size=8)
    channel = Channel(uuid.uuid4(), 0)
    hub.channels[channel.conversation_id] = channel
    assert await hub._fetch([channel]) == []
    assert hub._reader is not None
    backend = hub._reader.get_server_pid()
    await pool.execute("SELECT pg_terminate_backend($1)", backend)  # as a PostgreSQL restart cuts it
    await asyncio.sleep(0.2)

    await hub._read([channel])  # fails: logged, the connection dropped, the channel left pending
    assert hub._reader is None and channel.pending_since is not None
    await hub._read([channel])
    assert hub._reader is not None and hub._reader.get_server_pid() != backend
    await hub._drop_reader(broken=False)
