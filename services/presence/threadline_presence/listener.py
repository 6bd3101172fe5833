"""Invalidating the membership cache on ``membership.changed`` (contract 6.4, 6.9; STYLE 8).

A dedicated connection (a pooled one loses its listeners) LISTENs on ``tl_events``. The notification carries
``<conversation_id>:<highest seq>`` only, so the listener reads the ``membership.changed`` rows of the
notified range from the event log and drops the cached conversations of the users they name, and, for a
member added, of everyone in that conversation (its creator's list may predate it). The callback
only does ``put_nowait`` into a bounded queue; a full queue, a lost connection or a failed read clear the
whole cache instead, since an invalidation may have been missed. Reconnects back off from 0.5 s to 10 s; a
quiet connection is pinged every 15 s.

The range read is ``(last seq seen for that conversation, notified seq]``. For a conversation not seen since
(re)connecting it is just the notified seq: a membership change is the only event of its transaction
(contract 6.5), so it always carries the notified (highest) number.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from uuid import UUID

import asyncpg
from pydantic import ValidationError

from threadline_presence.memberships import ConversationsCache
from threadline_presence.repository import DB_DOWN
from threadline_shared.dto.enums import MembershipAction
from threadline_shared.dto.events import STREAM_EVENT_ADAPTER, EventType, MembershipChangedEvent
from threadline_shared.eventlog import EVENTS_CHANNEL, parse_notify_payload

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
BATCH_SIZE = 1_000
MAX_TRACKED_CONVERSATIONS = 100_000
BACKOFF_START_SECONDS, BACKOFF_MAX_SECONDS = 0.5, 10.0
PING_SECONDS = 15.0

_MEMBERSHIP_EVENTS = f"""
SELECT e.envelope
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS b(conversation_id, after_seq, top_seq)
JOIN event_log e ON e.conversation_id = b.conversation_id AND e.seq > b.after_seq AND e.seq <= b.top_seq
WHERE e.type = '{EventType.MEMBERSHIP_CHANGED.value}'
"""
_PARTICIPANTS = "SELECT user_id FROM participants WHERE conversation_id = ANY($1::uuid[]) AND left_at IS NULL"
_LOST = ""


class MembershipListener:
    def __init__(self, database_url: str, pool: asyncpg.Pool, cache: ConversationsCache) -> None:
        self.database_url = database_url
        self.pool = pool
        self.cache = cache
        self.connected = asyncio.Event()
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._overflowed = False
        self._seen: dict[UUID, int] = {}

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff."""
        backoff = BACKOFF_START_SECONDS
        while True:
            try:
                await self._listen()
                backoff = BACKOFF_START_SECONDS
            except DB_DOWN as exc:
                log.warning("membership listener disconnected: %r", exc)
            except asyncpg.PostgresError as exc:
                log.warning("membership listener failed: %r", exc)
            except Exception:
                log.exception("membership listener failed")
            self.connected.clear()
            self._forget_everything()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.database_url, timeout=5)
        try:
            conn.add_termination_listener(self._on_termination)
            await conn.add_listener(EVENTS_CHANNEL, self._on_notify)
            # Whatever was cached before this point may have missed an invalidation.
            self._forget_everything()
            self.connected.set()
            log.info("membership listener connected")
            while True:
                try:
                    async with asyncio.timeout(PING_SECONDS):
                        payloads = [await self._queue.get()]
                except TimeoutError:
                    # Quiet for a while: make sure the connection still answers (a silent network loss
                    # would otherwise leave us deaf until the next reconnect).
                    async with asyncio.timeout(PING_SECONDS):
                        await conn.fetchval("SELECT 1")
                    continue
                while len(payloads) < BATCH_SIZE and not self._queue.empty():
                    payloads.append(self._queue.get_nowait())
                if _LOST in payloads or conn.is_closed():
                    return
                await self._handle(payloads)
        finally:
            await asyncio.shield(_close(conn))

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        try:
            self._queue.put_nowait(str(payload))
        except asyncio.QueueFull:
            self._overflowed = True

    def _on_termination(self, conn: object) -> None:
        try:
            self._queue.put_nowait(_LOST)
        except asyncio.QueueFull:
            self._overflowed = True  # the consumer is busy draining; it then sees the closed connection

    def _forget_everything(self) -> None:
        self.cache.clear()
        self._seen.clear()
        self._overflowed = False
        while not self._queue.empty():
            self._queue.get_nowait()

    async def _handle(self, payloads: Iterable[str]) -> None:
        if self._overflowed:
            self._forget_everything()
            return
        ranges: dict[UUID, tuple[int, int]] = {}
        for payload in payloads:
            try:
                conversation_id, top = parse_notify_payload(payload)
            except ValueError:
                log.warning("ignoring malformed %s payload %r", EVENTS_CHANNEL, payload)
                continue
            if conversation_id in ranges:
                after, previous_top = ranges[conversation_id]
                ranges[conversation_id] = (after, max(previous_top, top))
            else:
                ranges[conversation_id] = (self._seen.get(conversation_id, top - 1), top)
        if not ranges:
            return
        if len(self._seen) + len(ranges) > MAX_TRACKED_CONVERSATIONS:
            self._seen.clear()
        ids = list(ranges)
        try:
            rows = await self.pool.fetch(
                _MEMBERSHIP_EVENTS, ids, [ranges[c][0] for c in ids], [ranges[c][1] for c in ids]
            )
        except (*DB_DOWN, asyncpg.PostgresError) as exc:
            log.warning("membership events not read, cache cleared: %r", exc)
            self._forget_everything()
            return
        for conversation_id, (_, top) in ranges.items():
            self._seen[conversation_id] = max(top, self._seen.get(conversation_id, 0))
        users: set[UUID] = set()
        joined: set[UUID] = set()
        for row in rows:
            try:
                event = STREAM_EVENT_ADAPTER.validate_json(row["envelope"])
            except ValidationError:
                log.warning("unreadable membership event in the log")
                continue
            if isinstance(event, MembershipChangedEvent):
                users.add(event.payload.user_id)
                if event.payload.action is MembershipAction.ADDED:
                    joined.add(event.payload.conversation_id)
        if joined:
            # Creating a conversation announces nothing (6.5), so its creator's cached list may lack it; it
            # matters once someone else is in it, which is announced: refresh everyone in it then.
            try:
                members = await self.pool.fetch(_PARTICIPANTS, list(joined))
            except (*DB_DOWN, asyncpg.PostgresError) as exc:
                log.warning("participants not read, cache cleared: %r", exc)
                self._forget_everything()
                return
            users.update(row["user_id"] for row in members)
        if users:
            self.cache.invalidate(users)


async def _close(conn: asyncpg.Connection) -> None:
    try:
        async with asyncio.timeout(5):
            await conn.close()
    except (*DB_DOWN, asyncpg.PostgresError):
        conn.terminate()
