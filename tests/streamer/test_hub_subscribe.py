"""Hub.subscribe_at (the lean connect path's subscription, threadline_streamer.hub): no wait, no query; a
membership read older than a membership change already delivered is refused, so that the full path checks
again; during shutdown a new subscriber is closed at once."""

from __future__ import annotations

import uuid
from typing import Any, cast

import asyncpg

from threadline_streamer.connection import CloseReason, Connection
from threadline_streamer.hub import Hub


def hub() -> Hub:
    return Hub(cast(asyncpg.Pool, cast(Any, None)), queue_size=8)  # subscribe_at never queries


def connection(conversation_id: uuid.UUID) -> Connection:
    return Connection(conversation_id, uuid.uuid4(), uuid.uuid4(), queue_size=8)


async def test_the_first_subscriber_opens_the_channel_at_its_own_read() -> None:
    subject, conversation_id = hub(), uuid.uuid4()
    first = connection(conversation_id)
    assert subject.subscribe_at(first, 41)
    channel = subject.channels[conversation_id]
    assert channel.cursor == 41 and channel.connections == {first}
    assert channel.pending_since is not None  # read once now: a doorbell may have rung before it existed


async def test_a_read_older_than_a_delivered_membership_change_is_refused() -> None:
    subject, conversation_id = hub(), uuid.uuid4()
    assert subject.subscribe_at(connection(conversation_id), 5)
    subject.channels[conversation_id].membership_seq = 7  # as _deliver records a membership.changed
    late = connection(conversation_id)
    assert not subject.subscribe_at(late, 6)
    assert late not in subject.channels[conversation_id].connections
    assert subject.subscribe_at(connection(conversation_id), 7)


async def test_during_shutdown_a_new_subscriber_is_closed_at_once() -> None:
    subject, conversation_id = hub(), uuid.uuid4()
    subject.closing = True
    late = connection(conversation_id)
    assert subject.subscribe_at(late, 0)
    assert late.closed is CloseReason.SHUTDOWN
    subject.unsubscribe(late)
    assert subject.unsubscribed == 1 and conversation_id not in subject.channels
