"""``membership.changed`` events (contract 6.3-6.5): one durable event per membership change, written with it,
its doorbell rung on commit; nothing for no-ops, failures, conversation creation or invite create/revoke."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.support.api import Api
from tests.support.conversations import (
    add_participant,
    create_conversation,
    create_invite,
    event_rows,
    remove_participant,
)
from tests.support.problems import assert_problem


def changed(conversation_id: str, user_id: object, role: str, action: str) -> dict[str, Any]:
    payload = {"conversation_id": conversation_id, "user_id": str(user_id), "role": role, "action": action}
    return {"type": "membership.changed", "payload": payload}


async def envelopes(pool: asyncpg.Pool, conversation_id: str) -> list[dict[str, Any]]:
    rows = await event_rows(pool, conversation_id)
    assert [row["seq"] for row in rows] == list(range(1, len(rows) + 1))
    assert all(row["type"] == "membership.changed" and row["audience_user_id"] is None for row in rows)
    return [json.loads(row["envelope"]) for row in rows]


@pytest.fixture
async def doorbell(database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """Payloads of ``NOTIFY tl_events`` as a dedicated LISTEN connection receives them."""
    received: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(database_url)

    def on_notify(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        received.put_nowait(str(payload))

    await conn.add_listener("tl_events", on_notify)
    try:
        yield received
    finally:
        await conn.close()


async def test_each_membership_change_appends_one_event_in_sequence(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob, carol = await api.persona("alice"), await api.persona("bob"), await api.persona("carol")
    conversation_id = await create_conversation(api, alice)

    await add_participant(api, alice, conversation_id, bob, "viewer")
    await add_participant(api, alice, conversation_id, bob, "admin")
    await add_participant(api, bob, conversation_id, carol)
    await remove_participant(api, bob, conversation_id, carol)
    await remove_participant(api, bob, conversation_id, bob)

    assert await envelopes(pool, conversation_id) == [
        changed(conversation_id, bob.id, "viewer", "added"),
        changed(conversation_id, bob.id, "admin", "role_updated"),
        changed(conversation_id, carol.id, "member", "added"),
        changed(conversation_id, carol.id, "member", "removed"),
        changed(conversation_id, bob.id, "admin", "removed"),
    ]


async def test_accepting_an_invite_records_the_new_member(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    token = await create_invite(api, alice, conversation_id, role="viewer")

    assert (await api.post("/api/invites/accept", bob, json={"token": token})).status_code == 200
    assert (await api.post("/api/invites/accept", bob, json={"token": token})).status_code == 200

    assert await envelopes(pool, conversation_id) == [changed(conversation_id, bob.id, "viewer", "added")]


async def test_no_ops_and_non_membership_actions_emit_nothing(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, alice, "owner")  # same role: no-op
    token = await create_invite(api, alice, conversation_id)
    assert (await api.post(f"/api/invites/{token}/revoke", alice)).status_code == 204
    member_token = await create_invite(api, alice, conversation_id, "other@example.com")
    await add_participant(api, alice, conversation_id, bob, "admin")
    # bob is already in: accepting keeps his membership and emits nothing.
    assert (await api.post("/api/invites/accept", bob, json={"token": member_token})).status_code == 200

    assert await envelopes(pool, conversation_id) == [changed(conversation_id, bob.id, "admin", "added")]


async def test_the_doorbell_rings_with_the_top_sequence_number(
    api: Api, pool: asyncpg.Pool, doorbell: asyncio.Queue[str]
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)

    await add_participant(api, alice, conversation_id, bob)
    await add_participant(api, alice, conversation_id, bob, "viewer")

    assert await asyncio.wait_for(doorbell.get(), 5) == f"{conversation_id}:1"
    assert await asyncio.wait_for(doorbell.get(), 5) == f"{conversation_id}:2"


async def test_a_refused_change_leaves_no_event_and_rings_no_doorbell(
    api: Api, pool: asyncpg.Pool, doorbell: asyncio.Queue[str]
) -> None:
    alice, bob, carol = await api.persona("alice"), await api.persona("bob"), await api.persona("carol")
    conversation_id = await create_conversation(api, alice)

    last_owner = await api.delete(f"/api/conversations/{conversation_id}/participants/{alice.id}", alice)
    not_allowed = await api.post(
        f"/api/conversations/{conversation_id}/participants", bob, json={"user_id": str(carol.id)}
    )
    demote_last = await api.post(
        f"/api/conversations/{conversation_id}/participants",
        alice,
        json={"user_id": str(alice.id), "role": "admin"},
    )
    assert_problem(last_owner, 409, "RGP.CONFLICT")
    assert_problem(not_allowed, 403, "RGP.RBAC.FORBIDDEN")
    assert_problem(demote_last, 409, "RGP.CONFLICT")
    assert await event_rows(pool, conversation_id) == []
    assert await pool.fetchval("SELECT last_seq FROM conversations") == 0

    # Notifications arrive in commit order: had a refused request rung, its payload would come first.
    await add_participant(api, alice, conversation_id, bob)
    assert await asyncio.wait_for(doorbell.get(), 5) == f"{conversation_id}:1"
    assert doorbell.empty()


async def test_events_of_two_conversations_are_numbered_separately(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    first = await create_conversation(api, alice, "first")
    second = await create_conversation(api, alice, "second")

    await add_participant(api, alice, first, bob)
    await add_participant(api, alice, second, bob)
    await add_participant(api, alice, first, bob, "viewer")

    assert [row["seq"] for row in await event_rows(pool, first)] == [1, 2]
    assert [row["seq"] for row in await event_rows(pool, second)] == [1]


async def test_concurrent_changes_take_gapless_sequence_numbers(api: Api, pool: asyncpg.Pool) -> None:
    alice = await api.persona("alice")
    others = [await api.persona(name) for name in ("bob", "carol", "dave", "erin")]
    conversation_id = await create_conversation(api, alice)

    await asyncio.gather(*(add_participant(api, alice, conversation_id, user) for user in others))

    added = await envelopes(pool, conversation_id)
    assert sorted(e["payload"]["user_id"] for e in added) == sorted(str(user.id) for user in others)
