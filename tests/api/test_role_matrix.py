"""The role matrix of contract 4.5, one case per cell, for the rows section 4 serves.

Each case: alice creates the conversation (owner); bob holds the role under test (for the owner column a
second owner, so that leaving is allowed) or is not a participant; carol is the target where a row needs one.
A refused action must change nothing: the conversation's event counter stays where it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import httpx
import pytest

from tests.support.api import Api, Persona
from tests.support.conversations import add_participant, create_conversation, create_invite
from tests.support.problems import assert_problem

Call = Callable[[], Awaitable[httpx.Response]]


@dataclass
class Scene:
    api: Api
    founder: Persona
    actor: Persona
    conversation_id: str

    def path(self, suffix: str = "") -> str:
        return f"/api/conversations/{self.conversation_id}{suffix}"

    async def target(self, role: str | None = None) -> Persona:
        """carol, added by the founder with ``role`` (None: not added)."""
        carol = await self.api.persona("carol")
        if role is not None:
            await add_participant(self.api, self.founder, self.conversation_id, carol, role)
        return carol

    def set_role(self, user: Persona, role: str) -> Call:
        body = {"user_id": str(user.id), "role": role}
        return lambda: self.api.post(self.path("/participants"), self.actor, json=body)

    def remove(self, user: Persona) -> Call:
        return lambda: self.api.delete(self.path(f"/participants/{user.id}"), self.actor)

    def invite(self, role: str) -> Call:
        body = {"email": "x@example.com", "role": role}
        return lambda: self.api.post(self.path("/invites"), self.actor, json=body)


# Each action prepares its scene (targets, invites) and returns the actor's request, not yet sent.


async def read_conversation(s: Scene) -> Call:
    return lambda: s.api.get(s.path(), s.actor)


async def add_a_participant(s: Scene) -> Call:
    return s.set_role(await s.target(), "member")


async def change_role_among_non_owners(s: Scene) -> Call:
    return s.set_role(await s.target("member"), "viewer")


async def grant_owner(s: Scene) -> Call:
    return s.set_role(await s.target("member"), "owner")


async def change_an_owner(s: Scene) -> Call:
    return s.set_role(await s.target("owner"), "admin")


async def remove_an_owner(s: Scene) -> Call:
    return s.remove(await s.target("owner"))


async def remove_a_non_owner(s: Scene) -> Call:
    return s.remove(await s.target("member"))


async def leave(s: Scene) -> Call:
    return s.remove(s.actor)


async def create_a_non_owner_invite(s: Scene) -> Call:
    return s.invite("admin")


async def create_an_owner_invite(s: Scene) -> Call:
    return s.invite("owner")


async def list_invites(s: Scene) -> Call:
    return lambda: s.api.get(s.path("/invites"), s.actor)


async def revoke_an_invite(s: Scene) -> Call:
    token = await create_invite(s.api, s.founder, s.conversation_id)
    return lambda: s.api.post(f"/api/invites/{token}/revoke", s.actor)


async def accept_an_invite(s: Scene) -> Call:
    token = await create_invite(s.api, s.founder, s.conversation_id, role="viewer")
    return lambda: s.api.post("/api/invites/accept", s.actor, json={"token": token})


Action = Callable[[Scene], Awaitable[Call]]
NON_PARTICIPANT = "non-participant"
COLUMNS = ("owner", "admin", "member", "viewer", NON_PARTICIPANT)
MATRIX: list[tuple[Action, tuple[int, int, int, int, int]]] = [
    # action                         owner admin member viewer non-participant
    (read_conversation,             (200, 200, 200, 200, 403)),
    (add_a_participant,             (204, 204, 403, 403, 403)),
    (change_role_among_non_owners,  (204, 204, 403, 403, 403)),
    (grant_owner,                   (204, 403, 403, 403, 403)),
    (change_an_owner,               (204, 403, 403, 403, 403)),
    (remove_an_owner,               (204, 403, 403, 403, 403)),
    (remove_a_non_owner,            (204, 204, 403, 403, 403)),
    (leave,                         (204, 204, 204, 204, 403)),
    (create_a_non_owner_invite,     (201, 201, 403, 403, 403)),
    (list_invites,                  (200, 200, 403, 403, 403)),
    (revoke_an_invite,              (204, 204, 403, 403, 403)),
    (create_an_owner_invite,        (201, 403, 403, 403, 403)),
    (accept_an_invite,              (200, 200, 200, 200, 200)),
]  # fmt: skip


async def last_seq(pool: asyncpg.Pool, conversation_id: str) -> int:
    seq: int = await pool.fetchval("SELECT last_seq FROM conversations WHERE id = $1", UUID(conversation_id))
    return seq


CELLS = [
    pytest.param(action, column, status, id=f"{action.__name__}-{column}")
    for action, statuses in MATRIX
    for column, status in zip(COLUMNS, statuses, strict=True)
]


@pytest.mark.parametrize(("action", "role", "expected"), CELLS)
async def test_role_matrix(api: Api, pool: asyncpg.Pool, action: Action, role: str, expected: int) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation_id = await create_conversation(api, alice)
    if role != NON_PARTICIPANT:
        await add_participant(api, alice, conversation_id, bob, role)
    request = await action(Scene(api, alice, bob, conversation_id))
    before = await last_seq(pool, conversation_id)

    response = await request()

    if expected == 403:
        assert_problem(response, 403, "RGP.RBAC.FORBIDDEN")
        assert await last_seq(pool, conversation_id) == before
    else:
        assert response.status_code == expected, response.text


async def test_the_last_owner_is_the_exception_to_leaving(api: Api) -> None:
    alice = await api.persona("alice")
    conversation_id = await create_conversation(api, alice)
    response = await api.delete(f"/api/conversations/{conversation_id}/participants/{alice.id}", alice)
    assert_problem(response, 409, "RGP.CONFLICT")
