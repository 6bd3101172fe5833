"""The hub: live subscriptions keyed by conversation, fed by the event log (DESIGN 2, contract 6.4, 6.9).

A doorbell (``<conversation_id>:<top seq>``) only marks a conversation as pending. The hub's loop then reads
the new rows of every pending conversation in one query (DESIGN 5: one read of the log per doorbell batch),
whatever their number of subscribers, encodes each event once, and offers the frame to every connection in
the event's audience; a connection gets all of a round's events of a conversation in one write
(:mod:`threadline_streamer.fanout`). Doorbells that ring while a read is in flight are coalesced into the
next round.

A channel's cursor starts at the conversation's ``last_seq`` when its first subscriber arrives (before that
subscriber reads the log), so events committed later are read live and earlier ones by the replay; the
connection drops duplicates by sequence number.

Rows are read in slices of at most half a connection's queue: a backlog (the catch-up after the LISTEN
connection was lost, or doorbells coalesced under load) is then fanned out slice by slice, and each
connection's writer empties its queue while the next slice is read. Read in one go, a backlog longer than the
queue would close every connection of the conversation as a slow consumer, however fast it reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from threadline_streamer.connection import CloseReason, Connection
from threadline_streamer.fanout import Row, fan_out
from threadline_streamer.metrics import DOORBELL_TO_QUEUE
from threadline_streamer.replay import removed_user

log = logging.getLogger(__name__)

READ_BATCH = 1000
_READ = """
SELECT c.conversation_id, e.seq, e.type, e.envelope, e.audience_user_id
FROM unnest($1::uuid[], $2::bigint[]) AS c (conversation_id, after)
CROSS JOIN LATERAL (
    SELECT seq, type, envelope, audience_user_id FROM event_log
    WHERE conversation_id = c.conversation_id AND seq > c.after
    ORDER BY seq
    LIMIT $3
) e
ORDER BY c.conversation_id, e.seq
"""


class Channel:
    __slots__ = ("_members", "connections", "conversation_id", "cursor", "membership_seq", "pending_since")

    def __init__(self, conversation_id: UUID, cursor: int) -> None:
        self.conversation_id = conversation_id
        self.cursor = cursor
        self.connections: set[Connection] = set()  # changed only through add and discard
        self._members: tuple[Connection, ...] | None = ()
        self.pending_since: float | None = None
        # The newest membership.changed delivered here; at first the channel's opening cursor, since a change
        # before it was never delivered here: a membership read older than the opening is read again.
        self.membership_seq = cursor

    def add(self, connection: Connection) -> None:
        self.connections.add(connection)
        self._members = None

    def discard(self, connection: Connection) -> None:
        self.connections.discard(connection)
        self._members = None

    def members(self) -> tuple[Connection, ...]:
        """The connections as a tuple, rebuilt after a change: a fan-out walks them once per event (perf at
        48,000 deliveries/s: the set's iteration was 2.6% of the streamer's CPU, the tuple's 2.2%; most of
        either is loading each connection), and a connection that leaves during a fan-out cannot disturb the
        walk."""
        members = self._members
        if members is None:
            members = self._members = tuple(self.connections)
        return members


class Hub:
    def __init__(self, pool: asyncpg.Pool, *, queue_size: int) -> None:
        self.pool = pool
        self.read_batch = max(1, min(READ_BATCH, queue_size // 2))
        self.channels: dict[UUID, Channel] = {}
        self._wakeup = asyncio.Event()
        self._reader: PoolConnectionProxy | None = None  # held for the reads (see _fetch)
        self.on_channel_opened: Callable[[UUID], None] = lambda _: None
        self.on_channel_closed: Callable[[UUID], None] = lambda _: None
        self.on_membership_changed: Callable[[UUID], None] = lambda _: None
        self.unsubscribed = 0  # connections that left, since the start
        self.closing = False  # shutting down: a connection that subscribes now is closed at once

    # ---- subscriptions -------------------------------------------------------------------------------------

    def subscribe_at(self, connection: Connection, last_seq: int) -> bool:
        """Add a connection whose caller has just read the conversation's ``last_seq`` with the caller's
        membership (both connect paths); the first one of a conversation opens its channel at that read, so
        subscribing never waits. False, and nothing done, when a ``membership.changed`` newer than that read
        was already delivered here: the membership read may be stale, and the caller reads it again."""
        channel = self.channels.get(connection.conversation_id)
        if channel is None:
            channel = self._register(connection.conversation_id, last_seq)
        elif channel.membership_seq > last_seq:
            return False
        self._add(channel, connection)
        return True

    def _add(self, channel: Channel, connection: Connection) -> None:
        channel.add(connection)
        if self.closing:
            connection.close(CloseReason.SHUTDOWN)

    def _register(self, conversation_id: UUID, cursor: int) -> Channel:
        channel = Channel(conversation_id, cursor)
        self.channels[conversation_id] = channel
        # A doorbell that rang between reading last_seq and registering the channel was ignored: read once
        # now, so such an event is not held back until the conversation's next doorbell.
        channel.pending_since = time.perf_counter()
        self._wakeup.set()
        self.on_channel_opened(conversation_id)
        return channel

    def unsubscribe(self, connection: Connection) -> None:
        channel = self.channels.get(connection.conversation_id)
        if channel is None:
            return
        if connection in channel.connections:
            channel.discard(connection)
            self.unsubscribed += 1
        if not channel.connections:
            del self.channels[connection.conversation_id]
            self.on_channel_closed(connection.conversation_id)

    def connection_count(self) -> int:
        return sum(len(channel.connections) for channel in self.channels.values())

    def connections(self) -> list[Connection]:
        return [connection for channel in self.channels.values() for connection in channel.connections]

    # ---- doorbells -----------------------------------------------------------------------------------------

    def doorbell(self, conversation_id: UUID, top_seq: int) -> None:
        """Called from the LISTEN callback: mark the conversation pending, never block."""
        channel = self.channels.get(conversation_id)
        if channel is not None and top_seq > channel.cursor:
            if channel.pending_since is None:
                channel.pending_since = time.perf_counter()
            self._wakeup.set()

    def catch_up_all(self) -> None:
        """After the listener reconnects: read every live conversation from its cursor."""
        now = time.perf_counter()
        for channel in self.channels.values():
            channel.pending_since = channel.pending_since or now
        self._wakeup.set()

    async def run(self) -> None:
        """The dispatch loop: read every pending conversation, fan out, repeat while doorbells rang."""
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                pending = [channel for channel in self.channels.values() if channel.pending_since is not None]
                if pending:
                    await self._read(pending)
        finally:
            await self._drop_reader(broken=False)

    async def _fetch(self, pending: list[Channel]) -> list[asyncpg.Record]:
        """The new rows of ``pending``, on the connection the hub holds for its reads (measured: a query
        through the pool's acquire and release cost 80 µs of the streamer's CPU, on a held connection 33 µs,
        once per round)."""
        reader = self._reader
        if reader is None:
            reader = self._reader = await self.pool.acquire()
        rows: list[asyncpg.Record] = await reader.fetch(
            _READ,
            [channel.conversation_id for channel in pending],
            [channel.cursor for channel in pending],
            self.read_batch,
        )
        return rows

    async def _drop_reader(self, *, broken: bool) -> None:
        """Give the held connection back to the pool (closed first when ``broken``: the next read takes a
        fresh one)."""
        reader, self._reader = self._reader, None
        if reader is None:
            return
        if broken:
            try:
                reader.terminate()
            except asyncpg.InterfaceError:
                pass  # its connection was lost, and the pool took it back already (asyncpg detaches it)
        await self.pool.release(reader)  # (a no-op for one the pool took back)

    async def _read(self, pending: list[Channel]) -> None:
        now = time.perf_counter()
        started = {channel.conversation_id: channel.pending_since or now for channel in pending}
        for channel in pending:
            channel.pending_since = None
        try:
            while pending:
                rows = await self._fetch(pending)
                by_conversation: dict[UUID, list[asyncpg.Record]] = {}
                for row in rows:
                    by_conversation.setdefault(row["conversation_id"], []).append(row)
                full: dict[UUID, Channel] = {}
                for channel in pending:
                    found = by_conversation.get(channel.conversation_id)
                    if not found:
                        continue
                    since = started[channel.conversation_id]
                    self._deliver(channel, found, since)
                    channel.cursor = found[-1]["seq"]
                    DOORBELL_TO_QUEUE.observe(time.perf_counter() - since)
                    if len(found) == self.read_batch:
                        full[channel.conversation_id] = channel  # a backlog: its next slice next round
                # Doorbells that rang meanwhile join the next round, so that a long backlog of one
                # conversation does not hold the others back until it is read to the end.
                for channel in self.channels.values():
                    if channel.pending_since is not None:
                        if full.get(channel.conversation_id) is not channel:  # (a reopened channel too)
                            started[channel.conversation_id] = channel.pending_since
                            full[channel.conversation_id] = channel
                        channel.pending_since = None
                pending = list(full.values())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
            log.warning("reading the event log failed for %d conversations: %r", len(pending), exc)
            await self._drop_reader(broken=True)
            if isinstance(exc, asyncpg.InternalClientError):
                # A session cut mid-query (a PostgreSQL restart) can leave a pooled connection in a state
                # asyncpg no longer recovers from ("cannot switch to state 12; another operation is in
                # progress", MagicStack/asyncpg#1069): replace the pool's connections. Seen once in a
                # fresh-clone run of tests/streamer/test_stream_database_restart.py; the loop then died.
                await self.pool.expire_connections()
            for channel in pending:
                channel.pending_since = channel.pending_since or started[channel.conversation_id]
            await asyncio.sleep(0.5)
            self._wakeup.set()

    def _deliver(self, channel: Channel, records: list[asyncpg.Record], since: float) -> None:
        """Fan out a round's rows of one conversation, each connection's events in one write
        (:mod:`threadline_streamer.fanout`); split after each ``membership.changed``, whose effects (a removed
        member's streams end) apply before anything later is delivered."""
        rows: list[Row] = [(r["seq"], r["type"], r["envelope"], r["audience_user_id"]) for r in records]
        start = 0
        for index, (seq, event_type, envelope, _) in enumerate(rows):
            if event_type == "membership.changed":
                fan_out(channel.members(), rows[start : index + 1], since)
                start = index + 1
                channel.membership_seq = seq
                self.on_membership_changed(channel.conversation_id)
                self._after_membership_change(channel.members(), envelope)
        if start < len(rows):
            fan_out(channel.members(), rows[start:], since)

    @staticmethod
    def _after_membership_change(connections: tuple[Connection, ...], envelope: str) -> None:
        removed = removed_user(envelope)
        if removed is None:
            return
        for connection in connections:
            if connection.user_id == removed:
                connection.finish_after_flush(CloseReason.REMOVED)
