"""A supervised LISTEN connection (STYLE 8), shared by the streamer, the assistant worker and the rate-limit
rule book.

One dedicated ``asyncpg.connect`` (a pooled connection would lose its listeners) listens on the given
channels; callbacks receive the payload and must only hand it on (never block). When the connection is lost
the supervisor reconnects with backoff (0.5 s doubling to 10 s) and calls ``on_connected`` again, so the
owner can catch up on what it missed. A cheap periodic query notices a silently dead socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import asyncpg

log = logging.getLogger(__name__)

BACKOFF_START, BACKOFF_MAX = 0.5, 10.0
CHECK_SECONDS = 5.0


class SupervisedListener:
    def __init__(
        self,
        database_url: str,
        channels: Mapping[str, Callable[[str], None]],
        *,
        on_connected: Callable[[], None] = lambda: None,
        application_name: str | None = None,
    ) -> None:
        self.database_url = database_url
        self.channels = dict(channels)
        self.on_connected = on_connected
        self.server_settings = {"application_name": application_name} if application_name else {}
        self.connected = False
        self._lost = asyncio.Event()

    def _terminated(self, conn: object) -> None:
        self.connected = False
        self._lost.set()

    async def run(self) -> None:
        backoff = BACKOFF_START
        while True:
            try:
                conn = await asyncpg.connect(
                    self.database_url, timeout=10, server_settings=self.server_settings
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("LISTEN connection failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            try:
                self._lost.clear()
                conn.add_termination_listener(self._terminated)
                for channel, callback in self.channels.items():
                    await conn.add_listener(channel, _payload_only(callback))
                self.connected = True
                backoff = BACKOFF_START
                self.on_connected()
                await self._watch(conn)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("LISTEN connection lost: %s", exc)
            finally:
                self.connected = False
                if not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when the connection is lost."""
        while not self._lost.is_set():
            try:
                async with asyncio.timeout(CHECK_SECONDS):
                    await self._lost.wait()
            except TimeoutError:
                async with asyncio.timeout(CHECK_SECONDS):
                    await conn.fetchval("SELECT 1")


def _payload_only(callback: Callable[[str], None]) -> Callable[[object, int, str, object], None]:
    def listener(conn: object, pid: int, channel: str, payload: object) -> None:
        callback(str(payload))

    return listener
