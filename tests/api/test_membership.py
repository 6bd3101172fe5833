"""Adding participants, changing roles, removing and leaving (contract 4.3)."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import pytest

from tests.support.api import Api
from tests.support.conversations import (
    add_participant,
    create_conversation,
    db_now,
    joined_at,
    remove_participant,
    roles_of,
    view,
)
from tests.support.problems import assert_problem
from threadline_shared.dto.base import format_timestamp

UNKNOWN_ID = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"


def participants_path(conversation_id: str) -> str:
    return f"/api/conversations/{conversation_id}/participants"


async def test_an_owner_adds_a_member_by_default(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)

    added = await api.post(participants_path(conversation_id), alice, json={"user_id": str(bob.id)})

    assert added.status_code == 204
    assert added.content == b""
    assert await roles_of(api, bob, conversation_id) == {"alice": "owner", "bob": "member"}


async def test_an_admin_adds_and_re_roles_non_owners(api: Api) -> None:
    alice, bob, carol = await api.persona("alice"), await api.persona("bob"), await api.persona("carol")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "admin")

    await add_participant(api, bob, conversation_id, carol, "viewer")
    await add_participant(api, bob, conversation_id, carol, "admin")

    assert await roles_of(api, alice, conversation_id) == {"alice": "owner", "bob": "admin", "carol": "admin"}


async def test_changing_a_role_keeps_joined_at(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob)
    joined = await joined_at(pool, conversation_id, bob.id)
    changing = await db_now(pool)  # the change's now() is at least this, later than joined

    await add_participant(api, alice, conversation_id, bob, "viewer")

    [bob_row] = [
        p for p in (await view(api, alice, conversation_id))["participants"] if p["username"] == "bob"
    ]
    assert joined < changing
    assert (bob_row["role"], bob_row["joined_at"]) == ("viewer", format_timestamp(joined))
    assert await joined_at(pool, conversation_id, bob.id) == joined


async def test_adding_with_the_current_role_changes_nothing(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "viewer")
    before = await view(api, alice, conversation_id)
    # The repeated add runs later (a new joined_at would differ), and writes no row.
    assert await db_now(pool) > await joined_at(pool, conversation_id, bob.id)

    await add_participant(api, alice, conversation_id, bob, "viewer")

    assert await view(api, alice, conversation_id) == before
    rows = await pool.fetchval(
        "SELECT count(*) FROM participants WHERE conversation_id = $1 AND user_id = $2",
        UUID(conversation_id),
        bob.id,
    )
    assert rows == 1


async def test_adding_an_unknown_user_is_404(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    response = await api.post(participants_path(conversation_id), alice, json={"user_id": UNKNOWN_ID})
    assert_problem(response, 404, "RGP.NOT_FOUND")


async def test_role_check_comes_before_the_unknown_user_check(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob)
    response = await api.post(participants_path(conversation_id), bob, json={"user_id": UNKNOWN_ID})
    assert_problem(response, 403, "RGP.RBAC.FORBIDDEN")


async def test_adding_to_an_unknown_conversation_is_403(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    response = await api.post(participants_path(UNKNOWN_ID), alice, json={"user_id": str(bob.id)})
    assert_problem(response, 403, "RGP.RBAC.FORBIDDEN")


async def test_an_owner_can_demote_another_owner(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "owner")

    await add_participant(api, bob, conversation_id, alice, "member")

    assert await roles_of(api, bob, conversation_id) == {"alice": "member", "bob": "owner"}


async def test_the_last_owner_cannot_be_demoted(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    response = await api.post(
        participants_path(conversation_id), alice, json={"user_id": str(alice.id), "role": "admin"}
    )
    assert_problem(response, 409, "RGP.CONFLICT")
    assert await roles_of(api, alice, conversation_id) == {"alice": "owner"}


async def test_re_granting_owner_to_the_last_owner_is_a_no_op(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    response = await api.post(
        participants_path(conversation_id), alice, json={"user_id": str(alice.id), "role": "owner"}
    )
    assert response.status_code == 204


@pytest.mark.parametrize("role", ["owner", "admin", "member", "viewer"])
async def test_a_member_who_left_can_be_added_again_with_a_new_joined_at(
    api: Api, pool: asyncpg.Pool, role: str
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "admin")
    first_joined = await joined_at(pool, conversation_id, bob.id)
    await remove_participant(api, bob, conversation_id, bob)
    before = await db_now(pool)

    await add_participant(api, alice, conversation_id, bob, role)

    after = await db_now(pool)
    [bob_row] = [p for p in (await view(api, bob, conversation_id))["participants"] if p["username"] == "bob"]
    joined = await joined_at(pool, conversation_id, bob.id)
    assert (bob_row["role"], bob_row["joined_at"]) == (role, format_timestamp(joined))
    assert first_joined < before <= joined <= after


async def test_membership_history_keeps_one_row_per_membership(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    # Readings of the database's clock between the requests bound each request's now().
    readings = [await db_now(pool)]
    await add_participant(api, alice, conversation_id, bob)
    readings.append(await db_now(pool))
    await remove_participant(api, alice, conversation_id, bob)
    readings.append(await db_now(pool))
    await add_participant(api, alice, conversation_id, bob)
    readings.append(await db_now(pool))

    rows = await pool.fetch(
        "SELECT joined_at, left_at FROM participants WHERE conversation_id = $1 AND user_id = $2 ORDER BY id",
        UUID(conversation_id),
        bob.id,
    )
    assert [(r["left_at"] is None) for r in rows] == [False, True]
    first_joined, left, joined_again = rows[0]["joined_at"], rows[0]["left_at"], rows[1]["joined_at"]
    assert readings[0] <= first_joined <= readings[1] <= left <= readings[2] <= joined_again <= readings[3]
    assert first_joined < left < joined_again


async def test_an_admin_removes_a_member(api: Api) -> None:
    alice, bob, carol = await api.persona("alice"), await api.persona("bob"), await api.persona("carol")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "admin")
    await add_participant(api, alice, conversation_id, carol)

    removed = await api.delete(f"{participants_path(conversation_id)}/{carol.id}", bob)

    assert removed.status_code == 204
    assert removed.content == b""
    assert await roles_of(api, alice, conversation_id) == {"alice": "owner", "bob": "admin"}
    assert_problem(await api.get(f"/api/conversations/{conversation_id}", carol), 403, "RGP.RBAC.FORBIDDEN")


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
async def test_any_participant_can_leave(api: Api, role: str) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, role)

    await remove_participant(api, bob, conversation_id, bob)

    assert await roles_of(api, alice, conversation_id) == {"alice": "owner"}


async def test_an_owner_can_leave_when_another_owner_remains(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "owner")

    await remove_participant(api, alice, conversation_id, alice)

    assert await roles_of(api, bob, conversation_id) == {"bob": "owner"}


async def test_the_last_owner_cannot_leave(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "admin")

    response = await api.delete(f"{participants_path(conversation_id)}/{alice.id}", alice)

    assert_problem(response, 409, "RGP.CONFLICT")
    assert await roles_of(api, alice, conversation_id) == {"alice": "owner", "bob": "admin"}


async def test_an_owner_removes_another_owner(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "owner")

    await remove_participant(api, bob, conversation_id, alice)

    assert await roles_of(api, bob, conversation_id) == {"bob": "owner"}


async def test_an_admin_cannot_remove_the_owner(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "admin")

    response = await api.delete(f"{participants_path(conversation_id)}/{alice.id}", bob)

    # 4.3 step 4 (owner target, caller not owner: 403) comes before step 5 (last owner: 409).
    assert_problem(response, 403, "RGP.RBAC.FORBIDDEN")


async def test_removing_someone_who_is_not_a_participant_is_404(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    assert_problem(
        await api.delete(f"{participants_path(conversation_id)}/{bob.id}", alice), 404, "RGP.NOT_FOUND"
    )
    assert_problem(
        await api.delete(f"{participants_path(conversation_id)}/{UNKNOWN_ID}", alice), 404, "RGP.NOT_FOUND"
    )


async def test_a_member_cannot_remove_others_even_non_participants(api: Api) -> None:
    alice, bob, carol = await api.persona("alice"), await api.persona("bob"), await api.persona("carol")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob)
    # 4.3 step 2 (role) comes before step 3 (target is a participant).
    response = await api.delete(f"{participants_path(conversation_id)}/{carol.id}", bob)
    assert_problem(response, 403, "RGP.RBAC.FORBIDDEN")


async def test_a_non_participant_cannot_leave(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    response = await api.delete(f"{participants_path(conversation_id)}/{bob.id}", bob)
    assert_problem(response, 403, "RGP.RBAC.FORBIDDEN")


async def test_removing_from_an_unknown_conversation_is_403(api: Api) -> None:
    alice = await api.persona("alice")
    response = await api.delete(f"{participants_path(UNKNOWN_ID)}/{alice.id}", alice)
    assert_problem(response, 403, "RGP.RBAC.FORBIDDEN")


async def test_two_owners_leaving_at_once_leave_exactly_one_owner(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "owner")

    results = await asyncio.gather(
        api.delete(f"{participants_path(conversation_id)}/{alice.id}", alice),
        api.delete(f"{participants_path(conversation_id)}/{bob.id}", bob),
    )

    assert sorted(r.status_code for r in results) == [204, 409]
    [stayed] = [p for p, r in zip((alice, bob), results, strict=True) if r.status_code == 409]
    assert await roles_of(api, stayed, conversation_id) == {stayed.username: "owner"}


async def test_concurrent_demotions_of_two_owners_leave_one_owner(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "owner")

    results = await asyncio.gather(
        api.post(participants_path(conversation_id), alice, json={"user_id": str(bob.id), "role": "member"}),
        api.post(participants_path(conversation_id), bob, json={"user_id": str(alice.id), "role": "member"}),
    )

    # The first demotion wins; the second caller is no longer an owner (403) - never zero owners.
    assert sorted(r.status_code for r in results) == [204, 403]
    roles = await roles_of(api, alice, conversation_id)
    assert sorted(roles.values()) == ["member", "owner"]
