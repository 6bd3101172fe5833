"""A connection's writer and queue (threadline_streamer.connection): an idle connection writes a frame at
once; once one frame had to wait, every later one queues behind it, so order holds; a closed connection
writes nothing; a durable event already written is not written twice."""

from __future__ import annotations

import uuid

import pytest

from tests.support.writes import Socket
from threadline_streamer.connection import CloseReason, Connection
from threadline_streamer.wire import http_chunk


def idle_connection(socket: Socket) -> Connection:
    connection = Connection(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), queue_size=8)
    connection.direct = socket.write  # as the stream's loop lends it while the queue is empty
    return connection


async def test_an_idle_connection_writes_the_encoded_chunk_at_once() -> None:
    socket = Socket()
    connection = idle_connection(socket)
    assert connection.offer(1, b"one", "thread.new")
    assert socket.written == [http_chunk(b"one")]
    assert connection.highest_seq == 1 and not connection.queue


async def test_after_one_frame_waits_the_later_ones_queue_behind_it_in_order() -> None:
    socket = Socket()
    connection = idle_connection(socket)
    socket.accepting = False
    assert not connection.offer(1, b"one", "thread.new")
    assert connection.direct is None  # the queue is not empty: no frame may overtake it
    socket.accepting = True
    assert not connection.offer(2, b"two", "message.created")
    assert socket.written == []
    assert connection.take() == (b"onetwo", ["thread.new", "message.created"])


async def test_a_durable_event_already_written_is_not_written_again() -> None:
    socket = Socket()
    connection = idle_connection(socket)
    connection.highest_seq = 5  # the replay wrote up to 5
    assert not connection.offer(5, b"five", "thread.new")
    assert connection.offer(6, b"six", "thread.new")
    assert socket.written == [http_chunk(b"six")]


async def test_a_closed_or_finishing_connection_writes_nothing() -> None:
    for end in ("close", "finish"):
        socket = Socket()
        connection = idle_connection(socket)
        if end == "close":
            connection.close(CloseReason.CLIENT)
        else:
            connection.finish_after_flush(CloseReason.REMOVED)
        assert connection.direct is None
        assert not connection.offer(1, b"one", "thread.new")
        assert socket.written == [] and not connection.queue


def test_an_empty_frame_is_refused_for_it_would_end_the_response() -> None:
    with pytest.raises(ValueError):
        http_chunk(b"")


async def test_droppable_events_are_dropped_only_over_half_full_and_a_full_queue_closes() -> None:
    """Contract 6.8 with a queue of 8: at 4 queued (half) a delta still queues; at 5 (over half) deltas,
    presence and typing are dropped while durable events queue; at 8 the next offer closes the connection."""
    connection = Connection(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), queue_size=8)  # not idle: all queue
    for seq in range(1, 5):
        connection.offer(seq, b"durable", "message.created")
    assert len(connection.queue) == 4
    connection.offer(0, b"delta", "message.delta")
    assert len(connection.queue) == 5  # exactly half full before it: kept
    for droppable in ("message.delta", "presence.update", "typing.update"):
        connection.offer(0, b"dropped", droppable)
    assert len(connection.queue) == 5
    for seq in range(5, 8):
        connection.offer(seq, b"durable", "message.created")
    assert len(connection.queue) == 8 and connection.closed is None
    connection.offer(8, b"durable", "message.created")
    assert connection.closed is CloseReason.SLOW
