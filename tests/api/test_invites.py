"""Invites: create, list, accept, revoke (contract 4.4) and their derived status (4.1)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support.api import Api, running_api
from tests.support.conversations import (
    add_participant,
    create_conversation,
    create_invite,
    db_now,
    joined_at,
    remove_participant,
    roles_of,
    view,
)
from tests.support.problems import assert_problem
from threadline_shared.dto.base import format_timestamp

TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def invites_path(conversation_id: str) -> str:
    return f"/api/conversations/{conversation_id}/invites"


async def list_invites(api: Api, caller: Any, conversation_id: str) -> list[dict[str, Any]]:
    response = await api.get(invites_path(conversation_id), caller)
    assert response.status_code == 200, response.text
    invites: list[dict[str, Any]] = response.json()["invites"]
    return invites


async def accept(api: Api, caller: Any, token: str) -> Any:
    return await api.post("/api/invites/accept", caller, json={"token": token})


# ---- create ----------------------------------------------------------------------------------------------


async def test_an_invite_expires_after_the_default_ttl(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)

    created = await api.post(invites_path(conversation_id), alice, json={"email": "guest@example.com"})

    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"token", "expires_at"}
    assert TOKEN.match(body["token"])
    assert body["expires_at"] == format_timestamp(api.clock.now() + timedelta(seconds=86_400))


async def test_an_invite_takes_its_ttl_and_role_from_the_request(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)

    created = await api.post(
        invites_path(conversation_id),
        alice,
        json={"email": "guest@example.com", "role": "viewer", "ttl_seconds": 60},
    )

    assert created.json()["expires_at"] == format_timestamp(api.clock.now() + timedelta(seconds=60))
    [invite] = await list_invites(api, alice, conversation_id)
    assert (invite["role"], invite["status"]) == ("viewer", "active")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "no-at-sign"},
        {"email": "two@@example.com"},
        {"email": "@example.com"},
        {"email": "guest@example.com", "role": "superuser"},
        {"email": "guest@example.com", "ttl_seconds": 0},
        {"email": "guest@example.com", "ttl_seconds": 2_592_001},
        {"email": "guest@example.com", "ttl_seconds": 2.5},
        {"email": "guest@example.com", "ttl_seconds": "60"},
    ],
    ids=["missing-email", "no-at", "two-at", "empty-local", "bad-role", "ttl-0", "ttl-too-long", "ttl-float",
         "ttl-string"],
)  # fmt: skip
async def test_invalid_invite_request_is_422(api: Api, body: dict[str, Any]) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    assert_problem(await api.post(invites_path(conversation_id), alice, json=body), 422, "validation_failed")


async def test_the_longest_ttl_is_thirty_days(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    created = await api.post(
        invites_path(conversation_id), alice, json={"email": "g@x", "ttl_seconds": 2_592_000}
    )
    assert created.status_code == 201


@pytest.fixture
async def short_ttl_api(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> AsyncIterator[Api]:
    """The api with THREADLINE_INVITE_MAX_TTL_SECONDS=3600 and THREADLINE_INVITE_DEFAULT_TTL_SECONDS=600."""
    async with running_api(
        database_url, redis_url, invite_max_ttl_seconds=3600, invite_default_ttl_seconds=600
    ) as running:
        yield running


async def test_ttl_limits_come_from_the_settings(short_ttl_api: Api) -> None:
    api = short_ttl_api
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)

    too_long = await api.post(
        invites_path(conversation_id), alice, json={"email": "a@x", "ttl_seconds": 3601}
    )
    longest = await api.post(invites_path(conversation_id), alice, json={"email": "b@x", "ttl_seconds": 3600})
    default = await api.post(invites_path(conversation_id), alice, json={"email": "c@x"})

    problem = assert_problem(too_long, 422, "validation_failed")
    assert problem["details"]["errors"][0]["field"] == "ttl_seconds"
    assert longest.status_code == 201
    assert default.json()["expires_at"] == format_timestamp(api.clock.now() + timedelta(seconds=600))


async def test_a_duplicate_active_invite_is_409_ignoring_email_case(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    await create_invite(api, alice, conversation_id, "Guest@Example.com")

    again = await api.post(invites_path(conversation_id), alice, json={"email": "guest@EXAMPLE.com"})
    other_role = await api.post(
        invites_path(conversation_id), alice, json={"email": "guest@example.com", "role": "viewer"}
    )

    assert_problem(again, 409, "RGP.CONFLICT")
    assert other_role.status_code == 201


async def test_an_invite_that_is_no_longer_active_can_be_issued_again(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    revoked = await create_invite(api, alice, conversation_id, "a@example.com")
    assert (await api.post(f"/api/invites/{revoked}/revoke", alice)).status_code == 204
    await create_invite(api, alice, conversation_id, "b@example.com", ttl_seconds=10)
    api.clock.advance(10)

    await create_invite(api, alice, conversation_id, "a@example.com")
    await create_invite(api, alice, conversation_id, "b@example.com")


async def test_concurrent_duplicate_invites_create_exactly_one(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    results = await asyncio.gather(
        *(
            api.post(invites_path(conversation_id), alice, json={"email": "guest@example.com"})
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]


# ---- list ------------------------------------------------------------------------------------------------


async def test_invites_are_listed_newest_first_with_their_status(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    expiring = await create_invite(api, alice, conversation_id, "expiring@example.com", ttl_seconds=5)
    created_at = api.clock.now()
    api.clock.advance(1)
    accepted = await create_invite(api, alice, conversation_id, "accepted@example.com", role="viewer")
    api.clock.advance(1)
    revoked = await create_invite(api, alice, conversation_id, "revoked@example.com")
    api.clock.advance(1)
    active = await create_invite(api, alice, conversation_id, "active@example.com", role="admin")
    assert (await accept(api, bob, accepted)).status_code == 200
    accepted_at = api.clock.now()
    assert (await api.post(f"/api/invites/{revoked}/revoke", alice)).status_code == 204
    api.clock.advance(2)

    invites = await list_invites(api, alice, conversation_id)

    assert [i["token"] for i in invites] == [active, revoked, accepted, expiring]
    assert [i["status"] for i in invites] == ["active", "revoked", "accepted", "expired"]
    by_token = {i["token"]: i for i in invites}
    assert by_token[expiring] == {
        "id": by_token[expiring]["id"],
        "token": expiring,
        "email": "expiring@example.com",
        "role": "member",
        "status": "expired",
        "invited_by": str(alice.id),
        "created_at": format_timestamp(created_at),
        "expires_at": format_timestamp(created_at + timedelta(seconds=5)),
    }
    assert by_token[accepted]["accepted_by"] == str(bob.id)
    assert by_token[accepted]["accepted_at"] == format_timestamp(accepted_at)
    assert by_token[revoked]["revoked_at"] == format_timestamp(accepted_at)
    assert "accepted_by" not in by_token[revoked]


async def test_an_invite_is_expired_exactly_at_expires_at(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    await create_invite(api, alice, conversation_id, ttl_seconds=30)
    api.clock.advance(29.999)
    assert [i["status"] for i in await list_invites(api, alice, conversation_id)] == ["active"]
    api.clock.advance(0.001)
    assert [i["status"] for i in await list_invites(api, alice, conversation_id)] == ["expired"]


async def test_a_conversation_without_invites_lists_none(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    assert await list_invites(api, alice, conversation_id) == []


# ---- accept ----------------------------------------------------------------------------------------------


async def test_accepting_an_invite_starts_a_membership_with_its_role(api: Api, pool: asyncpg.Pool) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    token = await create_invite(api, alice, conversation_id, "someone-else@example.com", role="viewer")
    api.clock.advance(3)  # invite times follow the api's clock; joined_at is the database's now()
    before = await db_now(pool)

    accepted = await accept(api, bob, token)

    after = await db_now(pool)
    # The email is only a label: bob's own email does not have to match.
    assert accepted.status_code == 200
    assert accepted.json() == {"conversation_id": conversation_id, "role": "viewer"}
    [bob_row] = [p for p in (await view(api, bob, conversation_id))["participants"] if p["username"] == "bob"]
    joined = await joined_at(pool, conversation_id, bob.id)
    assert (bob_row["role"], bob_row["joined_at"]) == ("viewer", format_timestamp(joined))
    assert before <= joined <= after
    [invite] = await list_invites(api, alice, conversation_id)
    assert invite["accepted_at"] == format_timestamp(api.clock.now())


async def test_accepting_again_answers_the_same(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    token = await create_invite(api, alice, conversation_id, role="admin")
    first = await accept(api, bob, token)
    accepted_at = format_timestamp(api.clock.now())
    api.clock.advance(60)

    again = await accept(api, bob, token)

    assert again.status_code == 200
    assert again.json() == first.json() == {"conversation_id": conversation_id, "role": "admin"}
    [invite] = await list_invites(api, alice, conversation_id)
    assert invite["accepted_at"] == accepted_at


async def test_an_invite_accepted_by_one_user_is_gone_for_another(api: Api) -> None:
    alice, bob, carol = await api.persona("alice"), await api.persona("bob"), await api.persona("carol")
    conversation_id = await create_conversation(api, alice)
    token = await create_invite(api, alice, conversation_id)
    assert (await accept(api, bob, token)).status_code == 200

    problem = assert_problem(await accept(api, carol, token), 410, "RGP.GONE")

    assert problem["message"] == "invite already used"
    assert await roles_of(api, alice, conversation_id) == {"alice": "owner", "bob": "member"}


async def test_an_expired_invite_is_gone(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    token = await create_invite(api, alice, conversation_id, ttl_seconds=60)
    api.clock.advance(60)

    problem = assert_problem(await accept(api, bob, token), 410, "RGP.GONE")

    assert problem["message"] == "invite expired"
    assert_problem(await api.get(f"/api/conversations/{conversation_id}", bob), 403, "RGP.RBAC.FORBIDDEN")


async def test_a_revoked_invite_is_gone(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    token = await create_invite(api, alice, conversation_id, ttl_seconds=60)
    assert (await api.post(f"/api/invites/{token}/revoke", alice)).status_code == 204
    api.clock.advance(60)  # revoked and expired: revoked wins

    problem = assert_problem(await accept(api, bob, token), 410, "RGP.GONE")

    assert problem["message"] == "invite revoked"


@pytest.mark.parametrize("token", ["unknown", "A" * 43, ""])
async def test_accepting_an_unknown_token_is_404(api: Api, token: str) -> None:
    bob = await api.persona("bob")
    assert_problem(await accept(api, bob, token), 404, "RGP.NOT_FOUND")


@pytest.mark.parametrize("body", [{}, {"token": None}, {"token": 5}, {"token": ["x"]}])
async def test_accept_needs_a_token_string(api: Api, body: dict[str, Any]) -> None:
    bob = await api.persona("bob")
    assert_problem(await api.post("/api/invites/accept", bob, json=body), 422, "validation_failed")


async def test_a_participant_accepting_keeps_their_membership(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "admin")
    before = await view(api, bob, conversation_id)
    token = await create_invite(api, alice, conversation_id, role="viewer")
    api.clock.advance(5)

    accepted = await accept(api, bob, token)

    assert accepted.json() == {"conversation_id": conversation_id, "role": "admin"}
    assert (await view(api, bob, conversation_id))["participants"] == before["participants"]
    [invite] = await list_invites(api, alice, conversation_id)
    assert (invite["status"], invite["accepted_by"]) == ("accepted", str(bob.id))


async def test_a_former_member_accepting_joins_again(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    await add_participant(api, alice, conversation_id, bob, "admin")
    await remove_participant(api, alice, conversation_id, bob)
    token = await create_invite(api, alice, conversation_id)

    assert (await accept(api, bob, token)).json()["role"] == "member"
    assert await roles_of(api, bob, conversation_id) == {"alice": "owner", "bob": "member"}


async def test_its_accepter_gets_200_even_after_the_invite_is_revoked(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    token = await create_invite(api, alice, conversation_id, ttl_seconds=5)
    assert (await accept(api, bob, token)).status_code == 200
    assert (await api.post(f"/api/invites/{token}/revoke", alice)).status_code == 204
    api.clock.advance(10)

    again = await accept(api, bob, token)

    assert again.json() == {"conversation_id": conversation_id, "role": "member"}


async def test_two_users_racing_for_one_invite_one_wins(api: Api) -> None:
    alice, bob, carol = await api.persona("alice"), await api.persona("bob"), await api.persona("carol")
    conversation_id = await create_conversation(api, alice)
    token = await create_invite(api, alice, conversation_id)

    results = await asyncio.gather(accept(api, bob, token), accept(api, carol, token))

    assert sorted(r.status_code for r in results) == [200, 410]
    assert len(await roles_of(api, alice, conversation_id)) == 2


# ---- revoke ----------------------------------------------------------------------------------------------


async def test_revoking_twice_is_204_and_keeps_the_first_time(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    token = await create_invite(api, alice, conversation_id)
    first = await api.post(f"/api/invites/{token}/revoke", alice)
    revoked_at = format_timestamp(api.clock.now())
    api.clock.advance(30)

    second = await api.post(f"/api/invites/{token}/revoke", alice)

    assert (first.status_code, first.content, second.status_code) == (204, b"", 204)
    [invite] = await list_invites(api, alice, conversation_id)
    assert (invite["status"], invite["revoked_at"]) == ("revoked", revoked_at)


async def test_revoking_an_accepted_invite_keeps_the_membership(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    token = await create_invite(api, alice, conversation_id)
    assert (await accept(api, bob, token)).status_code == 200

    assert (await api.post(f"/api/invites/{token}/revoke", alice)).status_code == 204

    assert await roles_of(api, bob, conversation_id) == {"alice": "owner", "bob": "member"}
    assert [i["status"] for i in await list_invites(api, alice, conversation_id)] == ["revoked"]


async def test_revoking_an_unknown_token_is_404(api: Api) -> None:
    alice = await api.persona("alice")
    assert_problem(await api.post("/api/invites/nope/revoke", alice), 404, "RGP.NOT_FOUND")


async def test_revoking_needs_owner_or_admin_of_the_invites_conversation(api: Api) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    token = await create_invite(api, alice, conversation_id)
    # bob owns another conversation: that gives him nothing over alice's invites.
    await create_conversation(api, bob)

    assert_problem(await api.post(f"/api/invites/{token}/revoke", bob), 403, "RGP.RBAC.FORBIDDEN")
    assert [i["status"] for i in await list_invites(api, alice, conversation_id)] == ["active"]
