"""The streamer's sweeper (threadline_streamer.sweeper): keepalives go to connections idle for the interval,
and session checks are spread over the interval, each connection's once every ``slices`` ticks."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any, cast

import asyncpg

from threadline_shared.clock import SystemClock
from threadline_streamer.connection import Connection
from threadline_streamer.hub import Hub
from threadline_streamer.sweeper import SESSION_CHECK_TIMEOUT_SECONDS, Sweeper
from threadline_streamer.wire import KEEPALIVE_CHUNK


def sweeper_with(connections: int, keepalive_seconds: float) -> tuple[Sweeper, list[Connection]]:
    pool = cast(asyncpg.Pool, cast(Any, None))  # sweep never queries
    hub = Hub(pool, queue_size=8)
    made = []
    for number in range(connections):
        connection = Connection(uuid.UUID(int=number % 7), uuid.uuid4(), uuid.uuid4(), queue_size=8)
        assert hub.subscribe_at(connection, 0)
        made.append(connection)
    return Sweeper(hub, pool, SystemClock(), keepalive_seconds), made


async def test_each_connection_is_due_for_its_session_check_once_per_interval() -> None:
    sweeper, connections = sweeper_with(500, keepalive_seconds=15)
    assert (sweeper.tick, sweeper.slices) == (1.0, 15)
    now = time.monotonic()
    turns = [sweeper.sweep(connections, now, turn) for turn in range(sweeper.slices)]
    due = [connection for turn in turns for connection in turn]
    assert sorted(map(id, due)) == sorted(map(id, connections)), "each once, none left out"
    assert max(map(len, turns)) < 500 // 15 * 2, "spread over the slices, not all in one"
    again = [sweeper.sweep(connections, now, turn) for turn in range(sweeper.slices)]
    assert [set(map(id, t)) for t in again] == [set(map(id, t)) for t in turns], "slices are fixed"


async def test_a_short_interval_still_checks_every_connection_within_it_half_at_a_time() -> None:
    sweeper, connections = sweeper_with(400, keepalive_seconds=2)  # the e2e stacks' setting
    assert (sweeper.tick, sweeper.slices) == (1.0, 2)
    now = time.monotonic()
    first, second = sweeper.sweep(connections, now, 0), sweeper.sweep(connections, now, 1)
    assert sorted(map(id, first + second)) == sorted(map(id, connections))
    assert 100 < len(first) < 300, "spread over both slices"


async def test_the_streams_of_one_session_are_checked_in_the_same_slice() -> None:
    sweeper, connections = sweeper_with(3, keepalive_seconds=15)
    for connection in connections:
        connection.session_id = connections[0].session_id  # three tabs of one login
    now = time.monotonic()
    turns = [len(sweeper.sweep(connections, now, turn)) for turn in range(sweeper.slices)]
    assert sorted(turns)[-1] == 3 and sum(turns) == 3


async def test_a_keepalive_goes_only_to_connections_idle_for_the_interval() -> None:
    sweeper, (idle, busy) = sweeper_with(2, keepalive_seconds=15)
    written: list[bytes] = []
    for connection in (idle, busy):
        connection.direct = lambda chunk: written.append(chunk) is None
    now = time.monotonic()
    idle.last_write, busy.last_write = now - 15, now - 1
    sweeper.sweep([idle, busy], now, 0)
    assert written == [KEEPALIVE_CHUNK]


async def test_keepalives_keep_going_while_the_session_check_is_stuck(pool: asyncpg.Pool) -> None:
    """A session check that cannot finish (here: the sessions table locked, as a stuck database or an
    exhausted pool would) is given up after its time limit; keepalives go out each tick meanwhile, or every
    client would see a silent stream and reconnect at once."""
    hub = Hub(pool, queue_size=8)
    connection = Connection(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), queue_size=8)
    assert hub.subscribe_at(connection, 0)
    sweeper = Sweeper(hub, pool, SystemClock(), keepalive_seconds=0.4)  # a tick of 0.2 s, 2 slices
    async with pool.acquire() as locker, locker.transaction():
        await locker.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        task = asyncio.get_running_loop().create_task(sweeper.run())
        try:
            keepalives = 0
            async with asyncio.timeout(SESSION_CHECK_TIMEOUT_SECONDS * 3):
                while keepalives < 3:  # 3 keepalives need 3 session checks' worth of ticks
                    await asyncio.sleep(0.05)
                    if connection.queue:
                        connection.take()
                        connection.last_write = time.monotonic() - 1
                        keepalives += 1
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert connection.closed is None  # a check that was given up closes nothing
