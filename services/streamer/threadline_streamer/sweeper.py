"""Keepalives and session checks (contract 6.7).

Every second the sweeper queues ``: keepalive`` on the connections that wrote nothing for the keepalive
interval (so keepalives spread over the interval instead of all firing at once); a write that then cannot
finish reaps a half-open client. It checks the newest session of each stream's rotation chain once per
keepalive interval: a stream whose session ended, or whose user was disabled, is closed. Those checks are
spread over the interval too, one slice of the streams per tick, one query each. Measured with 10,000
sessions: one query for all of them took 20-35 ms of the streamer's CPU (the ids encoded, the rows decoded)
and about 40 ms of PostgreSQL's at once, and a loop-lag probe in the streamer saw its fan-out held up 6-25 ms
at a time over 150 ms every interval; in 15 slices, 1.5-2 ms of the streamer's CPU each.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime
from uuid import UUID

import asyncpg

from threadline_shared.clock import Clock
from threadline_streamer.connection import CloseReason, Connection
from threadline_streamer.hub import Hub
from threadline_streamer.wire import KEEPALIVE, KEEPALIVE_CHUNK

log = logging.getLogger(__name__)

# Connections swept per loop turn: a sweep of 10,000 took 5 ms of the event loop (17-31 ms while the
# benchmark's load ran), every second; in chunks, the fan-out waits for one chunk at most (about 0.3 ms).
SWEEP_CHUNK = 500
SESSION_CHECK_TIMEOUT_SECONDS = 2.0
"""A session check that takes longer (a stuck database, an exhausted pool) is given up, and its connections
are checked again on their next turn: the keepalives of every stream wait for it meanwhile."""

_SESSIONS = """
WITH RECURSIVE chain(start_id, id, successor_id, depth) AS (
    SELECT id, id, successor_id, 0 FROM sessions WHERE id = ANY($1::uuid[])
    UNION ALL
    SELECT c.start_id, s.id, s.successor_id, c.depth + 1
    FROM sessions s JOIN chain c ON s.id = c.successor_id
    WHERE c.depth < 1000
), newest AS (
    SELECT DISTINCT ON (start_id) start_id, id FROM chain ORDER BY start_id, depth DESC
)
SELECT n.start_id
FROM newest n JOIN sessions s ON s.id = n.id JOIN users u ON u.id = s.user_id
WHERE s.revoked_at IS NULL AND s.expires_at > $2 AND s.absolute_expires_at > $2 AND u.disabled_at IS NULL
"""


async def valid_sessions(pool: asyncpg.Pool, session_ids: list[UUID], now: datetime) -> set[UUID]:
    """The ids among ``session_ids`` whose rotation chain ends in a valid session of an enabled user."""
    rows = await pool.fetch(_SESSIONS, session_ids, now)
    return {row["start_id"] for row in rows}


class Sweeper:
    def __init__(self, hub: Hub, pool: asyncpg.Pool, clock: Clock, keepalive_seconds: float) -> None:
        self.hub = hub
        self.pool = pool
        self.clock = clock
        self.keepalive_seconds = keepalive_seconds
        self.tick = min(1.0, keepalive_seconds / 2)
        self.slices = max(1, math.floor(keepalive_seconds / self.tick))  # a session check per interval

    async def run(self) -> None:
        turn = 0
        while True:
            await asyncio.sleep(self.tick)
            connections = self.hub.connections()
            due: list[Connection] = []
            for start in range(0, len(connections), SWEEP_CHUNK):
                if start:
                    await asyncio.sleep(0)  # the fan-out runs between chunks
                due += self.sweep(connections[start : start + SWEEP_CHUNK], time.monotonic(), turn)
            turn = (turn + 1) % self.slices
            await self.check_sessions(due)

    def sweep(self, connections: list[Connection], now: float, turn: int) -> list[Connection]:
        """Queue a keepalive on each of ``connections`` idle for the interval; return those whose session
        check is due at ``turn`` (0 to ``slices - 1``), each connection once every ``slices`` turns."""
        due: list[Connection] = []
        idle_since, slices = now - self.keepalive_seconds, self.slices
        for connection in connections:
            if connection.last_write <= idle_since and not connection.queue:
                connection.offer(0, KEEPALIVE, "keepalive", chunk=KEEPALIVE_CHUNK)
            # A connection's slice: its session's, so that a session's streams are checked in one query.
            if connection.session_id.int % slices == turn:
                due.append(connection)
        return due

    async def check_sessions(self, connections: list[Connection]) -> None:
        """Close those of ``connections`` whose session ended or whose user was disabled."""
        if not connections:
            return
        try:
            async with asyncio.timeout(SESSION_CHECK_TIMEOUT_SECONDS):
                valid = await valid_sessions(
                    self.pool, list({c.session_id for c in connections}), self.clock.now()
                )
        except (
            OSError,
            TimeoutError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
        ) as exc:
            # (asyncpg.InternalClientError: a session cut mid-query, as in Hub._read; uncaught, it would end
            # the sweeper's task and with it the streamer's TaskGroup.)
            log.warning("session check skipped: %r", exc)
            return
        for connection in connections:
            if connection.session_id not in valid:
                connection.close(CloseReason.SESSION)
