"""Hub.subscribe_at (both connect paths' subscription, threadline_streamer.hub): no wait, no query; a
membership read older than a membership change already delivered is refused, and the full path's
subscribe_member reads again; during shutdown a new subscriber is closed at once."""

from __future__ import annotations

import uuid
from typing import Any, cast

import asyncpg
import pytest

from threadline_shared.errors import Forbidden
from threadline_streamer.connection import CloseReason, Connection
from threadline_streamer.hub import Hub
from threadline_streamer.stream import MEMBERSHIP, subscribe_member


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


async def test_a_read_older_than_the_channels_opening_is_refused() -> None:
    """A membership change between the read and the channel's opening was never delivered to the channel,
    so the read may be stale: it is made again."""
    subject, conversation_id = hub(), uuid.uuid4()
    assert subject.subscribe_at(connection(conversation_id), 11)  # another stream opened it at seq 11
    late = connection(conversation_id)
    assert not subject.subscribe_at(late, 10)
    assert late not in subject.channels[conversation_id].connections
    assert subject.subscribe_at(connection(conversation_id), 11)


async def test_during_shutdown_a_new_subscriber_is_closed_at_once() -> None:
    subject, conversation_id = hub(), uuid.uuid4()
    subject.closing = True
    late = connection(conversation_id)
    assert subject.subscribe_at(late, 0)
    assert late.closed is CloseReason.SHUTDOWN
    subject.unsubscribe(late)
    assert subject.unsubscribed == 1 and conversation_id not in subject.channels


async def member_row(pool: asyncpg.Pool) -> tuple[uuid.UUID, uuid.UUID]:
    """A conversation with one participant, written straight into the database: (conversation, user)."""
    user = uuid.uuid4()
    await pool.execute(
        "INSERT INTO users (id, username, email, password_hash) VALUES ($1, $2, $3, 'x')",
        user, f"u{user.hex[:12]}", f"{user.hex[:12]}@example.com",
    )  # fmt: skip
    conversation: uuid.UUID = await pool.fetchval(
        "INSERT INTO conversations (title, assistant_replies, created_by, last_seq)"
        " VALUES ('t', false, $1, 4) RETURNING id",
        user,
    )
    await pool.execute(
        "INSERT INTO participants (conversation_id, user_id, role) VALUES ($1, $2, 'owner')",
        conversation,
        user,
    )
    return conversation, user


async def test_a_member_subscribes_at_the_last_seq_read_with_the_membership(pool: asyncpg.Pool) -> None:
    conversation, user = await member_row(pool)
    subject = Hub(pool, queue_size=8)
    joining = Connection(conversation, user, uuid.uuid4(), queue_size=8)

    joined_at = await subscribe_member(
        lambda: pool.fetchrow(MEMBERSHIP, conversation, user), subject, joining
    )

    assert joined_at is not None
    assert (
        subject.channels[conversation].cursor == 4 and joining in subject.channels[conversation].connections
    )


async def test_a_member_removed_between_the_read_and_the_subscription_is_refused(pool: asyncpg.Pool) -> None:
    """The full connect path's race: the removal commits, and its membership.changed reaches the channel,
    while the membership read is on its way back; the read is stale, so it is made again: 403."""
    conversation, user = await member_row(pool)
    subject = Hub(pool, queue_size=8)
    assert subject.subscribe_at(connection(conversation), 4)  # somebody else's stream holds the channel
    joining = Connection(conversation, user, uuid.uuid4(), queue_size=8)
    reads = 0

    async def read() -> asyncpg.Record | None:
        nonlocal reads
        reads += 1
        row = await pool.fetchrow(MEMBERSHIP, conversation, user)
        if reads == 1:
            await pool.execute(
                "UPDATE participants SET left_at = now() WHERE conversation_id = $1", conversation
            )
            await pool.execute("UPDATE conversations SET last_seq = 5 WHERE id = $1", conversation)
            subject.channels[conversation].membership_seq = 5  # as _deliver records the removal
        return row

    with pytest.raises(Forbidden):
        await subscribe_member(read, subject, joining)

    assert reads == 2
    assert joining not in subject.channels[conversation].connections
