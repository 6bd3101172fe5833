"""The supervised LISTEN connection (contract 6.9, STYLE 8).

One dedicated ``asyncpg.connect`` per process (a pooled connection would lose its listeners) listens on
``tl_events``; its callback only parses the payload and rings the hub. When the connection is lost the
supervisor reconnects with backoff (0.5 s doubling to 10 s) and has the hub catch up from the log for every
conversation with live subscribers.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from threadline_shared.eventlog import EVENTS_CHANNEL, parse_notify_payload
from threadline_streamer.hub import Hub

log = logging.getLogger(__name__)

BACKOFF_START, BACKOFF_MAX = 0.5, 10.0
# Names the LISTEN backend in pg_stat_activity, for operators (and the tests that cut it).
APPLICATION_NAME = "threadline-streamer-listener"


class Listener:
    def __init__(self, database_url: str, hub: Hub) -> None:
        self.database_url = database_url
        self.hub = hub
        self.connected = False
        self._lost = asyncio.Event()

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        try:
            conversation_id, top = parse_notify_payload(str(payload))
        except ValueError:
            log.warning("ignoring malformed doorbell %r", payload)
            return
        self.hub.doorbell(conversation_id, top)

    def _on_termination(self, conn: object) -> None:
        self.connected = False
        self._lost.set()

    async def run(self) -> None:
        backoff = BACKOFF_START
        first = True
        while True:
            try:
                conn = await asyncpg.connect(
                    self.database_url, timeout=10, server_settings={"application_name": APPLICATION_NAME}
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("LISTEN connection failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            try:
                self._lost.clear()
                conn.add_termination_listener(self._on_termination)
                await conn.add_listener(EVENTS_CHANNEL, self._on_notify)
                self.connected = True
                backoff = BACKOFF_START
                if not first:
                    log.info("LISTEN connection restored; catching up from the event log")
                first = False
                self.hub.catch_up_all()
                await self._watch(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("LISTEN connection lost: %s", exc)
            finally:
                self.connected = False
                if not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when the connection is lost; a cheap periodic query notices a silently dead socket."""
        while not self._lost.is_set():
            try:
                async with asyncio.timeout(5):
                    await self._lost.wait()
            except TimeoutError:
                async with asyncio.timeout(5):
                    await conn.fetchval("SELECT 1")
