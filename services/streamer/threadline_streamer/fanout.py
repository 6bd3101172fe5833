"""The live fan-out of durable events read in one round (contract 6.3, 6.4, 6.7; DESIGN 5).

Each event is encoded once. When a round read several events of a conversation (the events of one action,
such as a post's ``message.created``, ``thread.activity`` and per-user ``unread.update``, or a backlog), each
connection gets the events of its audience, in sequence order, as ONE write: a post into a conversation of
100 members was 299 socket writes and is 100. The kernel's send is most of a delivery's cost (measured with
perf on bench/streamer_fanout.py: 63% of the streamer's CPU), so the number of writes is what counts.

A connection that cannot take the write at once (its socket has unsent bytes, or frames are queued) gets the
frames offered one by one (:meth:`~threadline_streamer.connection.Connection.offer`: the queue, its
slow-consumer policy, dedupe by sequence number).

The caller splits a round's events after each ``membership.changed``, so that a removed member's streams
end right after that event: nothing later in the round reaches them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from uuid import UUID

from threadline_shared.metrics import STREAM_EVENTS_SENT
from threadline_streamer.connection import Connection
from threadline_streamer.metrics import DOORBELL_TO_WRITE, STREAM_WRITES
from threadline_streamer.wire import durable_frame, http_chunk

# (seq, event type, envelope JSON, audience user or None for everyone): one row of the event log.
Row = tuple[int, str, str, UUID | None]
# (seq, frame, event type): one encoded event.
Frame = tuple[int, bytes, str]


def fan_out(connections: Iterable[Connection], rows: Sequence[Row], since: float) -> None:
    """Deliver ``rows`` (one conversation's, in sequence order) to every connection of their audience.
    ``since``: when the first of them was rung (the doorbell-to-write histogram)."""
    if len(rows) == 1:
        _one(connections, rows[0], since)
    elif rows:
        _several(connections, rows, since)


def _one(connections: Iterable[Connection], row: Row, since: float) -> None:
    seq, event_type, envelope, audience = row
    frame = durable_frame(seq, event_type, envelope)
    chunk = http_chunk(frame)
    now = time.monotonic()
    delivered = written = 0
    for connection in connections:
        if audience is not None and audience != connection.user_id:
            continue
        delivered += 1
        # The common case inline (see Connection.offer): an idle connection, written to at once.
        write = connection.direct
        if write is not None and seq > connection.highest_seq and write(chunk):
            connection.highest_seq = seq
            connection.last_write = now
            written += 1
        else:
            written += connection.offer(seq, frame, event_type, since, chunk, now)
    if delivered:
        STREAM_EVENTS_SENT.labels(event_type).inc(delivered)
    _written(written, since)


def _several(connections: Iterable[Connection], rows: Sequence[Row], since: float) -> None:
    common: list[Frame] = []  # for everyone
    personal: dict[UUID, list[Frame]] = {}  # for one user each (unread.update)
    for seq, event_type, envelope, audience in rows:
        entry = (seq, durable_frame(seq, event_type, envelope), event_type)
        if audience is None:
            common.append(entry)
        else:
            personal.setdefault(audience, []).append(entry)
    common_body = b"".join([frame for _, frame, _ in common])
    common_chunk = http_chunk(common_body) if common else b""
    last_common = common[-1][0] if common else 0
    now = time.monotonic()
    reached = written = 0
    personal_reached: list[list[Frame]] = []
    for connection in connections:
        own = personal.get(connection.user_id)
        if own is None:
            if not common:
                continue
            frames, chunk = common, common_chunk
        else:
            personal_reached.append(own)
            if own[0][0] > last_common:  # the usual order: a post's unread.update comes last
                frames = common + own
                chunk = http_chunk(common_body + b"".join([frame for _, frame, _ in own]))
            else:  # sequence numbers are unique: sorting never compares the frames themselves
                frames = sorted(common + own)
                chunk = http_chunk(b"".join([frame for _, frame, _ in frames]))
        reached += 1
        write = connection.direct
        if write is not None and frames[0][0] > connection.highest_seq and write(chunk):
            connection.highest_seq = frames[-1][0]
            connection.last_write = now
            written += 1
            continue
        for seq, encoded, event_type in frames:
            written += connection.offer(seq, encoded, event_type, since, None, now)
    _count(common, reached if common else 0, personal_reached)
    _written(written, since)


def _count(common: list[Frame], reached: int, personal_reached: list[list[Frame]]) -> None:
    """Deliveries by event type: each common event to every connection reached, each personal one to its
    user's connections."""
    sent: Counter[str] = Counter()
    for _, _, event_type in common:
        sent[event_type] += reached
    for own in personal_reached:
        for _, _, event_type in own:
            sent[event_type] += 1
    for event_type, count in sent.items():
        if count:
            STREAM_EVENTS_SENT.labels(event_type).inc(count)


def _written(writes: int, since: float) -> None:
    if writes:  # the writes made at once: one observation for the whole fan-out
        STREAM_WRITES.inc(writes)
        DOORBELL_TO_WRITE.observe(time.perf_counter() - since)
