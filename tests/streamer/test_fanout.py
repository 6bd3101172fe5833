"""The live fan-out of a round's events (threadline_streamer.fanout, Hub._deliver): each connection gets the
events of its audience, in sequence order, as one write; a connection that cannot take it at once gets them
queued one by one, in order, without duplicates; a removed member gets nothing after its removal."""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

import asyncpg
import orjson
from prometheus_client import REGISTRY

from tests.support.writes import Socket
from threadline_streamer.connection import CloseReason, Connection
from threadline_streamer.fanout import Row, fan_out
from threadline_streamer.hub import Channel, Hub
from threadline_streamer.wire import durable_frame, http_chunk

CONVERSATION = uuid.uuid4()


def member(user_id: uuid.UUID | None = None) -> tuple[Connection, Socket]:
    socket = Socket()
    connection = Connection(CONVERSATION, user_id or uuid.uuid4(), uuid.uuid4(), queue_size=16)
    connection.direct = socket.write  # idle, as the stream's loop lends it
    return connection, socket


def envelope(event_type: str, **payload: Any) -> str:
    return orjson.dumps({"type": event_type, "payload": payload}, default=str).decode()


def removal_of(user_id: uuid.UUID) -> str:
    return envelope(
        "membership.changed", conversation_id=CONVERSATION, user_id=user_id, role="member", action="removed"
    )


def record(seq: int, event_type: str, envelope_json: str) -> dict[str, Any]:
    """A row of the hub's read of the log, for everyone."""
    return {"seq": seq, "type": event_type, "envelope": envelope_json, "audience_user_id": None}


def frame(row: Row) -> bytes:
    return durable_frame(row[0], row[1], row[2])


def post(first_seq: int, users: list[uuid.UUID]) -> list[Row]:
    """A reply's events as the api writes them: two for everyone, then one unread.update per user."""
    rows: list[Row] = [
        (first_seq, "message.created", envelope("message.created", id="m"), None),
        (first_seq + 1, "thread.activity", envelope("thread.activity", root_id="r"), None),
    ]
    for offset, user in enumerate(users):
        rows.append((first_seq + 2 + offset, "unread.update", envelope("unread.update", unread=offset), user))
    return rows


async def test_each_connection_gets_the_events_of_its_audience_in_one_write() -> None:
    (alice, alice_socket), (bob, bob_socket), (carol, carol_socket) = member(), member(), member()
    rows = post(10, [alice.user_id, bob.user_id])  # carol posted: no unread.update for her
    fan_out([alice, bob, carol], rows, since=time.perf_counter())

    assert alice_socket.written == [http_chunk(frame(rows[0]) + frame(rows[1]) + frame(rows[2]))]
    assert bob_socket.written == [http_chunk(frame(rows[0]) + frame(rows[1]) + frame(rows[3]))]
    assert carol_socket.written == [http_chunk(frame(rows[0]) + frame(rows[1]))]
    assert (alice.highest_seq, bob.highest_seq, carol.highest_seq) == (12, 13, 11)


async def test_a_personal_event_before_the_common_ones_keeps_its_place_in_sequence_order() -> None:
    (alice, alice_socket), (bob, bob_socket) = member(), member()
    marked_read: Row = (20, "unread.update", envelope("unread.update", unread=0), alice.user_id)
    rows = [marked_read, *post(21, [bob.user_id])]
    fan_out([alice, bob], rows, since=time.perf_counter())

    assert alice_socket.written == [http_chunk(frame(rows[0]) + frame(rows[1]) + frame(rows[2]))]
    assert bob_socket.written == [http_chunk(frame(rows[1]) + frame(rows[2]) + frame(rows[3]))]


async def test_only_personal_events_reach_only_their_users() -> None:
    (alice, alice_socket), (bob, bob_socket) = member(), member()
    rows: list[Row] = [
        (5, "unread.update", envelope("unread.update", unread=1), alice.user_id),
        (6, "unread.update", envelope("unread.update", unread=2), alice.user_id),
    ]
    fan_out([alice, bob], rows, since=time.perf_counter())
    assert alice_socket.written == [http_chunk(frame(rows[0]) + frame(rows[1]))]
    assert bob_socket.written == [] and bob.highest_seq == 0


async def test_a_connection_that_cannot_take_the_write_queues_each_event_in_order() -> None:
    (alice, alice_socket), (bob, bob_socket) = member(), member()
    bob_socket.accepting = False  # unsent bytes on bob's socket
    rows = post(30, [alice.user_id, bob.user_id])
    fan_out([alice, bob], rows, since=time.perf_counter())

    assert len(alice_socket.written) == 1
    assert bob_socket.written == [] and bob.direct is None
    assert bob.take() == (
        frame(rows[0]) + frame(rows[1]) + frame(rows[3]),
        ["message.created", "thread.activity", "unread.update"],
    )


async def test_events_already_written_by_the_replay_are_not_written_again() -> None:
    alice, alice_socket = member()
    alice.highest_seq = 41  # the replay wrote up to 41
    rows = post(40, [alice.user_id])  # 40, 41, 42
    fan_out([alice], rows, since=time.perf_counter())
    assert alice_socket.written == [http_chunk(frame(rows[2]))]
    assert alice.highest_seq == 42


async def test_a_closed_connection_gets_nothing() -> None:
    alice, alice_socket = member()
    alice.close(CloseReason.CLIENT)
    fan_out([alice], post(1, [alice.user_id]), since=time.perf_counter())
    assert alice_socket.written == [] and not alice.queue


async def test_a_single_event_is_one_write_to_each_of_its_audience() -> None:
    (alice, alice_socket), (bob, bob_socket) = member(), member()
    row: Row = (7, "unread.update", envelope("unread.update", unread=3), bob.user_id)
    fan_out([alice, bob], [row], since=time.perf_counter())
    assert alice_socket.written == [] and bob_socket.written == [http_chunk(frame(row))]


async def test_a_removed_member_gets_its_removal_and_nothing_after_it() -> None:
    hub = Hub(cast(asyncpg.Pool, cast(Any, None)), queue_size=16)  # _deliver never queries
    (alice, alice_socket), (bob, bob_socket) = member(), member()
    channel = Channel(CONVERSATION, 0)
    channel.add(alice)
    channel.add(bob)
    removal = removal_of(bob.user_id)
    rows = [
        record(1, "message.created", envelope("message.created", id="m")),
        record(2, "membership.changed", removal),
        record(3, "thread.activity", envelope("thread.activity")),
    ]
    hub._deliver(channel, cast(Any, rows), since=time.perf_counter())

    encoded = [durable_frame(row["seq"], row["type"], row["envelope"]) for row in rows]
    assert bob_socket.written == [http_chunk(encoded[0] + encoded[1])]
    assert bob.close_after_flush is CloseReason.REMOVED
    assert alice_socket.written == [http_chunk(encoded[0] + encoded[1]), http_chunk(encoded[2])]
    assert channel.membership_seq == 2


async def test_two_streams_of_one_user_each_get_that_users_events() -> None:
    user = uuid.uuid4()
    (laptop, laptop_socket), (phone, phone_socket), (bob, _) = member(user), member(user), member()
    rows = post(50, [user, bob.user_id])
    fan_out([laptop, phone, bob], rows, since=time.perf_counter())
    expected = [http_chunk(frame(rows[0]) + frame(rows[1]) + frame(rows[2]))]
    assert laptop_socket.written == expected and phone_socket.written == expected


async def test_a_round_reaching_a_connection_with_frames_queued_queues_behind_them_in_order() -> None:
    alice, alice_socket = member()
    alice_socket.accepting = False
    fan_out([alice], [(60, "thread.new", envelope("thread.new"), None)], since=time.perf_counter())
    assert alice.direct is None  # one frame is queued: later ones must not overtake it
    alice_socket.accepting = True
    rows = post(61, [alice.user_id])
    fan_out([alice], rows, since=time.perf_counter())
    assert alice_socket.written == []
    body, types = alice.take()
    assert body == durable_frame(60, "thread.new", envelope("thread.new")) + b"".join(map(frame, rows))
    assert types == ["thread.new", "message.created", "thread.activity", "unread.update"]


async def test_a_removed_member_whose_socket_is_full_gets_its_removal_queued_and_nothing_after() -> None:
    hub = Hub(cast(asyncpg.Pool, cast(Any, None)), queue_size=16)
    (bob, bob_socket) = member()
    bob_socket.accepting = False
    channel = Channel(CONVERSATION, 0)
    channel.add(bob)
    removal = removal_of(bob.user_id)
    rows = [
        record(1, "membership.changed", removal),
        record(2, "thread.activity", envelope("thread.activity")),
    ]
    hub._deliver(channel, cast(Any, rows), since=time.perf_counter())
    assert bob.close_after_flush is CloseReason.REMOVED
    assert bob.take() == (durable_frame(1, "membership.changed", removal), ["membership.changed"])


async def test_deliveries_are_counted_by_type_for_everyone_reached() -> None:
    def sent(event_type: str) -> float:
        value = REGISTRY.get_sample_value("threadline_stream_events_sent_total", {"type": event_type})
        return value or 0.0

    (alice, _), (bob, _), (carol, _) = member(), member(), member()
    types = ("message.created", "thread.activity", "unread.update")
    before = {event_type: sent(event_type) for event_type in types}
    writes_before = REGISTRY.get_sample_value("threadline_stream_live_writes_total") or 0.0
    fan_out([alice, bob, carol], post(70, [alice.user_id, bob.user_id]), since=time.perf_counter())
    assert sent("message.created") - before["message.created"] == 3
    assert sent("thread.activity") - before["thread.activity"] == 3
    assert sent("unread.update") - before["unread.update"] == 2
    assert (REGISTRY.get_sample_value("threadline_stream_live_writes_total") or 0.0) - writes_before == 3


async def test_a_channels_members_follow_every_add_and_discard() -> None:
    (alice, _), (bob, _) = member(), member()
    channel = Channel(CONVERSATION, 0)
    assert channel.members() == ()
    channel.add(alice)
    channel.add(bob)
    assert set(channel.members()) == {alice, bob}
    assert channel.members() is channel.members(), "built once until the next change"
    channel.discard(alice)
    assert channel.members() == (bob,)
    channel.discard(bob)
    assert channel.members() == ()
