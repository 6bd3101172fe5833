"""The worker's supervised LISTEN connection on ``tl_jobs`` and ``tl_cancel`` (contract 6.9, STYLE 8).

A dedicated ``asyncpg.connect`` (a pooled connection would lose its listeners). Callbacks only hand ids on:
``tl_jobs`` wakes the dispatcher, ``tl_cancel`` (payload: the assistant message id) reaches the running job.
On loss it reconnects with backoff (0.5 s doubling to 10 s). Notifications are only a shortcut: the worker
also polls for jobs every second and for cancel flags every 500 ms, so nothing depends on one arriving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from uuid import UUID

import asyncpg

from threadline_api.assistant.jobs import CANCEL_CHANNEL, JOBS_CHANNEL

log = logging.getLogger(__name__)

BACKOFF_START, BACKOFF_MAX = 0.5, 10.0
CHECK_SECONDS = 5.0


class JobSignals:
    def __init__(
        self, database_url: str, *, on_job: Callable[[], None], on_cancel: Callable[[UUID], None]
    ) -> None:
        self.database_url = database_url
        self.on_job = on_job
        self.on_cancel = on_cancel
        self.connected = False
        self._lost = asyncio.Event()

    def _job_notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self.on_job()

    def _cancel_notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        try:
            message_id = UUID(str(payload))
        except ValueError:
            log.warning("ignoring malformed %s payload %r", CANCEL_CHANNEL, payload)
            return
        self.on_cancel(message_id)

    def _terminated(self, conn: object) -> None:
        self.connected = False
        self._lost.set()

    async def run(self) -> None:
        backoff = BACKOFF_START
        while True:
            try:
                conn = await asyncpg.connect(self.database_url, timeout=10)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("LISTEN connection failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            try:
                self._lost.clear()
                conn.add_termination_listener(self._terminated)
                await conn.add_listener(JOBS_CHANNEL, self._job_notified)
                await conn.add_listener(CANCEL_CHANNEL, self._cancel_notified)
                self.connected = True
                backoff = BACKOFF_START
                self.on_job()  # jobs may have been queued while we were not listening
                await self._watch(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
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
                async with asyncio.timeout(CHECK_SECONDS):
                    await self._lost.wait()
            except TimeoutError:
                async with asyncio.timeout(CHECK_SECONDS):
                    await conn.fetchval("SELECT 1")
