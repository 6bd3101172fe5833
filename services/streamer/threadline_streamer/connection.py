"""One SSE connection: a bounded queue of encoded frames and the loop that writes them (contract 6.8).

Producers (the hub, the ephemeral forwarder, the keepalive sweeper) call :meth:`offer` without awaiting;
the connection's own coroutine wakes only when there is something to write, joins everything queued into
one write, and gives up when a write does not finish within the write timeout (a half-open client).

While that coroutine is idle (nothing queued) it lends the connection a ``direct`` writer (see
:mod:`threadline_streamer.transport`): an offered frame then goes to the socket at once, with no wakeup;
when the writer declines (the socket has unsent bytes) the frame is queued as before.

Over half full, new deltas and ephemeral events are dropped for this connection; full, the connection closes
(the client resumes from the log and loses nothing durable).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from uuid import UUID

from threadline_shared.metrics import STREAM_EVENTS_DROPPED
from threadline_streamer.wire import http_chunk

DROPPABLE = frozenset({"message.delta", "presence.update", "typing.update"})


class CloseReason(StrEnum):
    CLIENT = "client_disconnect"
    SLOW = "slow_consumer"
    WRITE_TIMEOUT = "write_timeout"
    REMOVED = "membership_removed"
    SESSION = "session_ended"
    SHUTDOWN = "shutdown"


class Connection:
    __slots__ = (
        "_wakeup",
        "close_after_flush",
        "closed",
        "conversation_id",
        "direct",
        "highest_seq",
        "last_write",
        "pending_since",
        "queue",
        "queue_size",
        "session_id",
        "user_id",
    )

    def __init__(self, conversation_id: UUID, user_id: UUID, session_id: UUID, queue_size: int) -> None:
        self.conversation_id = conversation_id
        self.user_id = user_id
        self.session_id = session_id
        self.queue_size = queue_size
        self.queue: deque[tuple[int, bytes, str]] = deque()  # (seq or 0, frame, event type)
        self.highest_seq = 0  # the highest durable seq written to this client
        self.closed: CloseReason | None = None
        self.close_after_flush: CloseReason | None = None
        self.last_write = time.monotonic()
        self.pending_since: float | None = None
        # The socket writer, set only while the connection is idle and open (its queue empty): the fan-out
        # then writes to the socket at once. Anything that queues a frame or ends the stream unsets it.
        self.direct: Callable[[bytes], bool] | None = None
        self._wakeup = asyncio.Event()

    def offer(
        self,
        seq: int,
        frame: bytes,
        event_type: str,
        since: float | None = None,
        chunk: bytes | None = None,
        now: float | None = None,
    ) -> bool:
        """Queue a frame (never blocks), or write it at once when the connection is idle; True when written.
        Applies the slow-consumer policy. ``since`` is when its doorbell rang (for the doorbell-to-write
        histogram of queued frames; the caller times frames written at once, once per fan-out); ``chunk``,
        the frame as an HTTP chunk (:func:`~threadline_streamer.wire.http_chunk`), and ``now``
        (``time.monotonic()``) when the caller has them for many connections."""
        if self.closed is not None or self.close_after_flush is not None:
            return False
        if len(self.queue) >= self.queue_size:
            self.close(CloseReason.SLOW)
            return False
        if event_type in DROPPABLE and len(self.queue) * 2 > self.queue_size:  # over half full (6.8)
            STREAM_EVENTS_DROPPED.labels(event_type).inc()
            return False
        if self.direct is not None:  # idle: the queue is empty
            if seq and seq <= self.highest_seq:
                return False  # already written (replay and live overlap)
            if self.direct(chunk or http_chunk(frame)):
                if seq:
                    self.highest_seq = seq
                self.last_write = now or time.monotonic()
                return True
        self.queue.append((seq, frame, event_type))
        self.direct = None  # frames now go through the queue, in order, until it is empty again
        if self.pending_since is None:
            self.pending_since = since if since is not None else time.perf_counter()
        self._wakeup.set()
        return False

    def close(self, reason: CloseReason) -> None:
        if self.closed is None:
            self.closed = reason
            self.direct = None
            self._wakeup.set()

    def finish_after_flush(self, reason: CloseReason) -> None:
        """Close once everything queued so far is written (membership removal)."""
        self.close_after_flush = reason
        self.direct = None
        self._wakeup.set()

    async def wait(self) -> None:
        await self._wakeup.wait()
        self._wakeup.clear()

    def take(self) -> tuple[bytes, list[str]]:
        """Everything queued, as one buffer, skipping durable events already sent (dedupe by seq)."""
        parts: list[bytes] = []
        types: list[str] = []
        while self.queue:
            seq, frame, event_type = self.queue.popleft()
            if seq:
                if seq <= self.highest_seq:
                    continue
                self.highest_seq = seq
            parts.append(frame)
            types.append(event_type)
        return b"".join(parts), types
