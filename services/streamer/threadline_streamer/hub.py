"""The hub: live subscriptions keyed by conversation, fed by the event log (DESIGN 2, contract 6.4, 6.9).

A doorbell (``<conversation_id>:<top seq>``) only marks a conversation as pending. The hub's loop then reads
the new rows of each pending conversation once, whatever its number of subscribers, encodes each event once,
and offers the frame to every connection in the event's audience. A conversation is read by at most one task
at a time; doorbells that arrive meanwhile are coalesced into the next read.

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
import orjson

from threadline_shared.metrics import STREAM_EVENTS_SENT
from threadline_streamer.connection import CloseReason, Connection
from threadline_streamer.metrics import DOORBELL_TO_QUEUE
from threadline_streamer.wire import durable_frame

log = logging.getLogger(__name__)

READ_BATCH = 1000
_READ = """
SELECT seq, type, envelope, audience_user_id FROM event_log
WHERE conversation_id = $1 AND seq > $2
ORDER BY seq
LIMIT $3
"""


class Channel:
    __slots__ = ("connections", "conversation_id", "cursor", "pending_since", "reading")

    def __init__(self, conversation_id: UUID, cursor: int) -> None:
        self.conversation_id = conversation_id
        self.cursor = cursor
        self.connections: set[Connection] = set()
        self.pending_since: float | None = None
        self.reading = False


class Hub:
    def __init__(self, pool: asyncpg.Pool, *, queue_size: int) -> None:
        self.pool = pool
        self.read_batch = max(1, min(READ_BATCH, queue_size // 2))
        self.channels: dict[UUID, Channel] = {}
        self._creating: dict[UUID, asyncio.Future[Channel]] = {}
        self._wakeup = asyncio.Event()
        self.on_channel_opened: Callable[[UUID], None] = lambda _: None
        self.on_channel_closed: Callable[[UUID], None] = lambda _: None
        self.on_membership_changed: Callable[[UUID], None] = lambda _: None

    # ---- subscriptions -------------------------------------------------------------------------------------

    async def subscribe(self, connection: Connection) -> None:
        """Add a connection; the first one of a conversation opens its channel at the current last_seq."""
        conversation_id = connection.conversation_id
        channel = self.channels.get(conversation_id)
        if channel is None:
            channel = await self._open(conversation_id)
        channel.connections.add(connection)

    async def _open(self, conversation_id: UUID) -> Channel:
        creating = self._creating.get(conversation_id)
        if creating is not None:
            return await asyncio.shield(creating)
        future: asyncio.Future[Channel] = asyncio.get_running_loop().create_future()
        self._creating[conversation_id] = future
        try:
            cursor = await self.pool.fetchval(
                "SELECT last_seq FROM conversations WHERE id = $1", conversation_id
            )
            channel = Channel(conversation_id, int(cursor or 0))
            self.channels[conversation_id] = channel
            # A doorbell that rang between reading last_seq and registering the channel was ignored: read
            # once now, so such an event is not held back until the conversation's next doorbell.
            channel.pending_since = time.perf_counter()
            self._wakeup.set()
            future.set_result(channel)
            self.on_channel_opened(conversation_id)
            return channel
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it
            raise
        finally:
            del self._creating[conversation_id]

    def unsubscribe(self, connection: Connection) -> None:
        channel = self.channels.get(connection.conversation_id)
        if channel is None:
            return
        channel.connections.discard(connection)
        if not channel.connections:
            del self.channels[connection.conversation_id]
            self.on_channel_closed(connection.conversation_id)

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
        """The dispatch loop: one read task per pending conversation at a time."""
        async with asyncio.TaskGroup() as tasks:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                for channel in list(self.channels.values()):
                    if channel.pending_since is not None and not channel.reading:
                        channel.reading = True
                        tasks.create_task(self._read(channel))

    async def _read(self, channel: Channel) -> None:
        try:
            while channel.pending_since is not None:
                started = channel.pending_since
                channel.pending_since = None
                while True:
                    rows = await self.pool.fetch(
                        _READ, channel.conversation_id, channel.cursor, self.read_batch
                    )
                    if rows:
                        self._deliver(channel, rows, started)
                        channel.cursor = rows[-1]["seq"]
                    if len(rows) < self.read_batch:
                        break
                DOORBELL_TO_QUEUE.observe(time.perf_counter() - started)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("reading the event log failed for %s: %s", channel.conversation_id, exc)
            channel.pending_since = channel.pending_since or time.perf_counter()
            await asyncio.sleep(0.5)
            self._wakeup.set()
        finally:
            channel.reading = False

    def _deliver(self, channel: Channel, rows: list[asyncpg.Record], since: float) -> None:
        connections = channel.connections
        for row in rows:
            seq, event_type, audience = row["seq"], row["type"], row["audience_user_id"]
            frame = durable_frame(seq, event_type, row["envelope"])
            delivered = 0
            for connection in connections:
                if audience is None or audience == connection.user_id:
                    connection.offer(seq, frame, event_type, since)
                    delivered += 1
            if delivered:
                STREAM_EVENTS_SENT.labels(event_type).inc(delivered)
            if event_type == "membership.changed":
                self.on_membership_changed(channel.conversation_id)
                self._after_membership_change(connections, row["envelope"])

    @staticmethod
    def _after_membership_change(connections: set[Connection], envelope: str) -> None:
        payload = orjson.loads(envelope)["payload"]
        if payload.get("action") != "removed":
            return
        removed = UUID(payload["user_id"])
        for connection in connections:
            if connection.user_id == removed:
                connection.finish_after_flush(CloseReason.REMOVED)
