"""Creating, listing and viewing conversations (contract 4.1, 4.2), with unread totals (5.8)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support.api import Api, running_api
from tests.support.conversations import (
    add_participant,
    create_conversation,
    db_now,
    event_rows,
    insert_message,
    joined_at,
    remove_participant,
    view,
)
from tests.support.factories import create_user
from tests.support.problems import assert_problem
from threadline_shared.dto.base import format_timestamp


async def test_creator_becomes_the_owner_of_a_new_conversation(api: Api, pool: asyncpg.Pool) -> None:
    alice = await api.persona("alice")
    # The api's clock runs an hour ahead: conversation and membership times still come from the database.
    api.clock.advance(3600)
    before = await db_now(pool)
    created = await api.post("/api/conversations", alice, json={"title": "  Weekend \n  plans\t"})
    after = await db_now(pool)

    assert created.status_code == 201, created.text
    assert set(created.json()) == {"conversation_id"}
    conversation_id = created.json()["conversation_id"]
    row = await pool.fetchrow(
        "SELECT created_at, last_activity_at FROM conversations WHERE id = $1", UUID(conversation_id)
    )
    # One transaction: the conversation and its owner's membership share its now().
    assert row["created_at"] == row["last_activity_at"] == await joined_at(pool, conversation_id, alice.id)
    assert before <= row["created_at"] <= after
    body = await view(api, alice, conversation_id)
    now = format_timestamp(row["created_at"])
    assert body == {
        "id": conversation_id,
        "title": "Weekend plans",
        "is_group": False,
        "assistant_replies": True,
        "created_by": str(alice.id),
        "created_at": now,
        "last_activity_at": now,
        "role": "owner",
        "unread_total": 0,
        "participants": [
            {
                "user_id": str(alice.id),
                "username": "alice",
                "display_name": "Alice",
                "role": "owner",
                "joined_at": now,
            }
        ],
    }


async def test_creating_a_conversation_emits_no_event(api: Api, pool: asyncpg.Pool) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)

    assert await pool.fetchval("SELECT last_seq FROM conversations WHERE id = $1", UUID(conversation_id)) == 0
    assert await event_rows(pool, conversation_id) == []


@pytest.mark.parametrize(
    ("fields", "is_group", "assistant_replies"),
    [
        ({}, False, True),
        ({"is_group": True}, True, False),
        ({"is_group": False, "assistant_replies": False}, False, False),
        ({"is_group": True, "assistant_replies": True}, True, True),
        ({"is_group": None, "assistant_replies": None}, False, True),
    ],
)
async def test_assistant_replies_default_to_not_is_group(
    api: Api, fields: dict[str, Any], is_group: bool, assistant_replies: bool
) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice, **fields)

    body = await view(api, alice, conversation_id)
    assert (body["is_group"], body["assistant_replies"]) == (is_group, assistant_replies)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": None},
        {"title": "   "},
        {"title": "x" * 257},
        {"title": 5},
        {"title": "ok", "is_group": "true"},
        {"title": "ok", "assistant_replies": 1},
    ],
    ids=["missing", "null", "blank", "too-long", "number", "is_group-string", "assistant_replies-int"],
)
async def test_invalid_create_request_is_422(api: Api, body: dict[str, object]) -> None:
    alice = await api.persona("alice")
    response = await api.post("/api/conversations", alice, json=body)
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["details"]["errors"]


async def test_a_256_character_title_is_accepted_after_normalisation(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice, title="  " + "x" * 256 + "  ")
    assert (await view(api, alice, conversation_id))["title"] == "x" * 256


async def test_list_shows_own_conversations_newest_activity_first(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    # Each creation is a transaction of its own, with a later now() than the one before.
    first = await create_conversation(api, alice, "first")
    second = await create_conversation(api, alice, "second")
    third = await create_conversation(api, bob, "bob's own")
    await add_participant(api, bob, third, alice, "viewer")
    # Activity in the first conversation (as posting would record it) moves it to the top.
    await pool.execute(
        "UPDATE conversations SET last_activity_at = $2 WHERE id = $1",
        UUID(first),
        await db_now(pool) + timedelta(seconds=5),
    )

    listed = await api.get("/api/conversations", alice)

    assert listed.status_code == 200
    conversations = listed.json()["conversations"]
    assert [c["id"] for c in conversations] == [first, third, second]
    assert [c["role"] for c in conversations] == ["owner", "viewer", "owner"]
    assert set(conversations[0]) == {
        "id", "title", "is_group", "role", "created_at", "last_activity_at", "unread_total"
    }  # fmt: skip
    assert [c["id"] for c in (await api.get("/api/conversations", bob)).json()["conversations"]] == [third]


async def test_list_breaks_activity_ties_by_id_descending(api: Api, pool: asyncpg.Pool) -> None:
    alice = await api.persona("alice")
    ids = [await create_conversation(api, alice, f"c{i}") for i in range(4)]
    # Created in separate transactions, they differ in activity: make it one time to tie them.
    await pool.execute(
        "UPDATE conversations SET last_activity_at = $2 WHERE id = ANY($1::uuid[])",
        [UUID(i) for i in ids],
        await db_now(pool),
    )

    listed = (await api.get("/api/conversations", alice)).json()["conversations"]

    assert [c["id"] for c in listed] == sorted(ids, key=UUID, reverse=True)


async def test_list_is_empty_for_a_user_without_conversations(api: Api) -> None:
    alice = await api.persona("alice")
    listed = await api.get("/api/conversations", alice)
    assert listed.status_code == 200
    assert listed.json() == {"conversations": []}


async def test_a_left_conversation_disappears_from_the_list(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob)
    await remove_participant(api, bob, conversation_id, bob)

    assert (await api.get("/api/conversations", bob)).json() == {"conversations": []}
    assert_problem(await api.get(f"/api/conversations/{conversation_id}", bob), 403, "RGP.RBAC.FORBIDDEN")


async def test_participants_are_ordered_by_joined_at_then_user_id(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob, carol = await api.persona("alice"), await api.persona("bob"), await api.persona("carol")
    grace = await create_user(pool, "grace")  # no display name
    conversation_id = await create_conversation(api, alice)
    # Each add is a transaction of its own: carol joins before bob, bob before grace.
    await add_participant(api, alice, conversation_id, carol, "viewer")
    await add_participant(api, alice, conversation_id, bob, "admin")
    add_grace = await api.post(
        f"/api/conversations/{conversation_id}/participants", alice, json={"user_id": str(grace)}
    )
    assert add_grace.status_code == 204
    by_join = [(alice.id, "alice"), (carol.id, "carol"), (bob.id, "bob"), (grace, "grace")]

    participants = (await view(api, carol, conversation_id))["participants"]

    assert [(p["user_id"], p["username"]) for p in participants] == [(str(u), n) for u, n in by_join]
    stored = [format_timestamp(await joined_at(pool, conversation_id, user)) for user, _ in by_join]
    assert [p["joined_at"] for p in participants] == stored
    assert stored == sorted(set(stored))  # strictly increasing

    # Joined at the same time, they are ordered by user id.
    joined = await db_now(pool)
    await pool.execute(
        "UPDATE participants SET joined_at = $2 WHERE conversation_id = $1 AND user_id <> $3",
        UUID(conversation_id),
        joined,
        alice.id,
    )

    participants = (await view(api, carol, conversation_id))["participants"]

    later = sorted([(str(bob.id), "bob"), (str(carol.id), "carol"), (str(grace), "grace")])
    assert [(p["user_id"], p["username"]) for p in participants] == [(str(alice.id), "alice"), *later]
    assert all(p["joined_at"] == format_timestamp(joined) for p in participants[1:])
    by_name = {p["username"]: p for p in participants}
    assert by_name["grace"] == {
        "user_id": str(grace),
        "username": "grace",
        "role": "member",
        "joined_at": format_timestamp(joined),
    }
    assert (by_name["bob"]["role"], by_name["bob"]["display_name"]) == ("admin", "Bob")


async def test_viewing_needs_an_active_membership(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, bob)

    # alice is the global admin: that grants nothing in conversations.
    assert_problem(await api.get(f"/api/conversations/{conversation_id}", alice), 403, "RGP.RBAC.FORBIDDEN")


async def test_an_unknown_conversation_looks_like_one_the_caller_is_not_in(api: Api) -> None:
    alice = await api.persona("alice")
    response = await api.get("/api/conversations/0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80", alice)
    assert_problem(response, 403, "RGP.RBAC.FORBIDDEN")


async def test_a_conversation_id_in_upper_case_is_accepted(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    response = await api.get(f"/api/conversations/{conversation_id.upper()}", alice)
    assert response.status_code == 200
    assert response.json()["id"] == conversation_id


async def test_unread_total_counts_other_peoples_messages_since_joining_and_reading(
    api: Api, pool: asyncpg.Pool
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    posted = await db_now(pool)  # after alice joined, before bob does
    before_bob = await insert_message(pool, conversation_id, alice.id, posted)
    await add_participant(api, alice, conversation_id, bob)
    joined = await joined_at(pool, conversation_id, bob.id)
    assert await joined_at(pool, conversation_id, alice.id) < posted < joined
    second = await insert_message(pool, conversation_id, alice.id, joined + timedelta(seconds=1))
    await insert_message(pool, conversation_id, alice.id, joined + timedelta(seconds=2), root=before_bob)
    await insert_message(pool, conversation_id, None, joined + timedelta(seconds=3), root=second)  # assistant
    await insert_message(pool, conversation_id, bob.id, joined + timedelta(seconds=4), root=second)  # own
    await insert_message(
        pool, conversation_id, alice.id, joined + timedelta(seconds=5), root=second, deleted=True
    )
    third = await insert_message(pool, conversation_id, alice.id, joined + timedelta(seconds=6))
    await insert_message(pool, conversation_id, alice.id, joined + timedelta(seconds=8), root=third)
    # bob read the third thread up to its root's time: only the reply after it stays unread there.
    await pool.execute(
        "INSERT INTO read_watermarks (user_id, root_id, conversation_id, read_at) VALUES ($1, $2, $3, $4)",
        bob.id,
        third,
        UUID(conversation_id),
        joined + timedelta(seconds=6),
    )

    # bob: reply to before_bob, second, the assistant reply, the reply in the third thread.
    assert (await view(api, bob, conversation_id))["unread_total"] == 4
    [summary] = (await api.get("/api/conversations", bob)).json()["conversations"]
    assert summary["unread_total"] == 4
    # alice: only the messages not by her, all after she joined (the assistant's and bob's).
    assert (await view(api, alice, conversation_id))["unread_total"] == 2


async def test_unread_totals_are_per_conversation_in_the_list(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    quiet = await create_conversation(api, alice, "quiet")
    busy = await create_conversation(api, alice, "busy")
    await add_participant(api, alice, quiet, bob)
    await add_participant(api, alice, busy, bob)
    later = await joined_at(pool, busy, bob.id) + timedelta(seconds=1)
    for _ in range(3):
        await insert_message(pool, busy, alice.id, later)

    listed = (await api.get("/api/conversations", bob)).json()["conversations"]

    assert {c["title"]: c["unread_total"] for c in listed} == {"quiet": 0, "busy": 3}


async def test_rejoining_counts_unread_from_the_new_joined_at(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob)
    first_joined = await joined_at(pool, conversation_id, bob.id)
    posted = await db_now(pool)
    await insert_message(pool, conversation_id, alice.id, posted)
    assert first_joined < posted
    assert (await view(api, bob, conversation_id))["unread_total"] == 1

    await remove_participant(api, alice, conversation_id, bob)
    await add_participant(api, alice, conversation_id, bob)

    assert posted < await joined_at(pool, conversation_id, bob.id)
    assert (await view(api, bob, conversation_id))["unread_total"] == 0


async def test_listing_costs_the_same_queries_for_one_or_many_conversations(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> None:
    queries: list[str] = []
    async with running_api(database_url, redis_url, query_observer=lambda q: queries.append(q.query)) as api:
        alice = await api.persona("alice")
        conversation_ids = [await create_conversation(api, alice, "first")]

        async def list_queries() -> list[str]:
            queries.clear()
            response = await api.get("/api/conversations", alice)
            assert len(response.json()["conversations"]) == len(conversation_ids)
            return list(queries)

        with_one = await list_queries()
        for i in range(5):
            conversation_ids.append(await create_conversation(api, alice, f"more {i}"))
            posted = await joined_at(pool, conversation_ids[-1], alice.id) + timedelta(seconds=1)
            await insert_message(pool, conversation_ids[-1], None, posted)
        with_six = await list_queries()

    assert sum("read_watermarks" in query for query in with_one) == 1
    assert with_one == with_six
