"""The event-log writer (contract 6.4, DESIGN 2): gapless commit-ordered numbers, events of one transaction
in order, a doorbell with ids only, and nothing at all from a rolled-back transaction."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import asyncpg
import orjson
import pytest

from tests.support.factories import create_conversation, create_user
from threadline_shared.dto.events import (
    MembershipChanged,
    MembershipChangedEvent,
    UnreadUpdate,
    UnreadUpdateEvent,
)
from threadline_shared.eventlog import (
    EVENTS_CHANNEL,
    ConversationNotFound,
    LogEntry,
    append_events,
    parse_notify_payload,
)


def membership(conversation_id: UUID, user_id: UUID) -> LogEntry:
    payload = MembershipChanged(
        conversation_id=conversation_id, user_id=user_id, role="member", action="added"
    )
    return LogEntry(MembershipChangedEvent(payload=payload))


def unread(root_id: UUID, count: int, user_id: UUID) -> LogEntry:
    return LogEntry(
        UnreadUpdateEvent(payload=UnreadUpdate(root_id=root_id, unread=count)), audience_user_id=user_id
    )


class Doorbell:
    """A dedicated LISTEN connection collecting tl_events notifications."""

    def __init__(self) -> None:
        self.payloads: asyncio.Queue[str] = asyncio.Queue()

    def on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self.payloads.put_nowait(payload)


@pytest.fixture
async def doorbell(database_url: str) -> AsyncIterator[Doorbell]:
    conn = await asyncpg.connect(database_url)
    bell = Doorbell()
    await conn.add_listener(EVENTS_CHANNEL, bell.on_notify)
    try:
        yield bell
    finally:
        await conn.close()


@pytest.fixture
async def alice_conversation(pool: asyncpg.Pool) -> tuple[UUID, UUID]:
    alice = await create_user(pool, "alice")
    return alice, await create_conversation(pool, alice)


async def test_events_of_one_transaction_take_consecutive_numbers_in_order(
    pool: asyncpg.Pool, alice_conversation: tuple[UUID, UUID]
) -> None:
    alice, conversation = alice_conversation
    root = uuid4()
    async with pool.acquire() as conn, conn.transaction():
        seqs = await append_events(
            conn,
            conversation,
            [membership(conversation, alice), unread(root, 3, alice), unread(root, 4, alice)],
        )

    rows = await pool.fetch(
        "SELECT seq, type, envelope, audience_user_id FROM event_log WHERE conversation_id = $1 ORDER BY seq",
        conversation,
    )
    assert seqs == [1, 2, 3]
    assert [(r["seq"], r["type"]) for r in rows] == [
        (1, "membership.changed"),
        (2, "unread.update"),
        (3, "unread.update"),
    ]
    assert [r["audience_user_id"] for r in rows] == [None, alice, alice]
    assert orjson.loads(rows[2]["envelope"]) == {
        "type": "unread.update",
        "payload": {"root_id": str(root), "unread": 4},
    }
    assert await pool.fetchval("SELECT last_seq FROM conversations WHERE id = $1", conversation) == 3


async def test_the_doorbell_carries_ids_only_and_rings_on_commit(
    pool: asyncpg.Pool, alice_conversation: tuple[UUID, UUID], doorbell: Doorbell
) -> None:
    alice, conversation = alice_conversation
    bell = doorbell
    async with pool.acquire() as conn, conn.transaction():
        await append_events(
            conn, conversation, [membership(conversation, alice), membership(conversation, alice)]
        )
        await asyncio.sleep(0.1)
        assert bell.payloads.empty(), "NOTIFY must not be delivered before commit"

    payload = await asyncio.wait_for(bell.payloads.get(), 5)
    assert payload == f"{conversation}:2"
    assert parse_notify_payload(payload) == (conversation, 2)


async def test_a_rolled_back_transaction_emits_nothing(
    pool: asyncpg.Pool, alice_conversation: tuple[UUID, UUID], doorbell: Doorbell
) -> None:
    alice, conversation = alice_conversation
    bell = doorbell

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with pool.acquire() as conn, conn.transaction():
            await append_events(conn, conversation, [membership(conversation, alice)])
            raise Abort

    async with pool.acquire() as conn, conn.transaction():
        seqs = await append_events(conn, conversation, [membership(conversation, alice)])

    assert seqs == [1], "the rolled-back number is reused: no gap"
    assert await asyncio.wait_for(bell.payloads.get(), 5) == f"{conversation}:1"
    await asyncio.sleep(0.2)
    assert bell.payloads.empty(), "the rolled-back transaction rang no doorbell"
    assert await pool.fetchval("SELECT count(*) FROM event_log WHERE conversation_id = $1", conversation) == 1


async def test_twenty_concurrent_writers_keep_the_sequence_gapless_and_commit_ordered(
    pool: asyncpg.Pool, alice_conversation: tuple[UUID, UUID], doorbell: Doorbell
) -> None:
    alice, conversation = alice_conversation
    bell = doorbell
    writers, rounds = 20, 10
    rng = random.Random(7)

    async def writer() -> list[list[int]]:
        batches = []
        for _ in range(rounds):
            async with pool.acquire() as conn, conn.transaction():
                size = rng.randint(1, 4)
                batches.append(
                    await append_events(conn, conversation, [membership(conversation, alice)] * size)
                )
                await asyncio.sleep(rng.random() / 1000)
        return batches

    results = await asyncio.gather(*(writer() for _ in range(writers)))

    batches = [batch for result in results for batch in result]
    total = sum(len(batch) for batch in batches)
    for batch in batches:
        assert batch == list(range(batch[0], batch[0] + len(batch))), "one transaction, consecutive numbers"
    rows = await pool.fetch(
        "SELECT seq, created_at FROM event_log WHERE conversation_id = $1 ORDER BY seq",
        conversation,
    )
    assert [r["seq"] for r in rows] == list(range(1, total + 1))
    created = [r["created_at"] for r in rows]
    assert created == sorted(created), "created_at never decreases along the sequence"
    # Commit order = number order: the doorbells arrive (in commit order) with strictly increasing tops.
    tops = [parse_notify_payload(await asyncio.wait_for(bell.payloads.get(), 5))[1] for _ in batches]
    assert tops == sorted(tops)
    assert tops[-1] == total


async def test_appending_outside_a_transaction_is_refused(
    pool: asyncpg.Pool, alice_conversation: tuple[UUID, UUID]
) -> None:
    alice, conversation = alice_conversation
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="inside the transaction"):
            await append_events(conn, conversation, [membership(conversation, alice)])


async def test_an_unknown_conversation_is_reported(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(ConversationNotFound):
            await append_events(conn, uuid4(), [membership(uuid4(), uuid4())])


async def test_nothing_to_append_writes_nothing(
    pool: asyncpg.Pool, alice_conversation: tuple[UUID, UUID]
) -> None:
    _, conversation = alice_conversation
    async with pool.acquire() as conn, conn.transaction():
        assert await append_events(conn, conversation, []) == []
    assert await pool.fetchval("SELECT last_seq FROM conversations WHERE id = $1", conversation) == 0
