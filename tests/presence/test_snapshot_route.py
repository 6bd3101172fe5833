"""``GET /api/conversations/{conversation_id}/presence`` (contract 7.4) and the streamer's ``snapshot``
(6.7): every active participant by ``user_id``, never-seen users offline without ``last_seen_at``, live
typing entries by ``expires_at``."""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg
from redis.asyncio import Redis

from tests.presence.conftest import Presence, create_conversation, leave, post_root
from tests.presence.support import subscribed
from tests.support.api import Api
from tests.support.problems import assert_problem
from threadline_shared.dto.base import format_timestamp
from threadline_shared.presence.snapshot import snapshot
from threadline_shared.presence.store import from_ms, to_ms


def now(presence: Presence, seconds: float = 0) -> str:
    return format_timestamp(from_ms(to_ms(presence.clock.now()) + round(seconds * 1000)))


async def test_every_participant_by_user_id_with_presence_and_live_typing(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice, bob, carol = await api.persona("alice"), await api.persona("bob"), await api.persona("carol")
    plans = await create_conversation(pool, alice, bob=(bob, "member"), carol=(carol, "viewer"))
    root = await post_root(pool, plans, alice)
    await presence.heartbeat(alice)
    alice_seen = now(presence)
    presence.clock.advance(3)
    await presence.heartbeat(bob, {"status": "away"})
    bob_seen = now(presence)
    await presence.typing(alice, plans, 20)
    await presence.typing(bob, plans, 5, root)
    await presence.typing(bob, plans, 1)
    presence.clock.advance(2)  # bob's 1-second entry has expired (whether or not it was swept yet)

    response = await presence.snapshot(carol, plans)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    by_user = sorted(
        [(alice.id, "online", alice_seen), (bob.id, "away", bob_seen), (carol.id, "offline", None)]
    )
    assert response.json() == {
        "participants": [
            {"user_id": str(user), "status": status, **({"last_seen_at": seen} if seen else {})}
            for user, status, seen in by_user
        ],
        "typing": [
            {
                "conversation_id": str(plans),
                "root_id": str(root),
                "user_id": str(bob.id),
                "expires_at": now(presence, 3),
            },
            {"conversation_id": str(plans), "user_id": str(alice.id), "expires_at": now(presence, 18)},
        ],
    }


async def test_an_offline_user_keeps_the_last_heartbeat_time(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis_url: str
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)
    await presence.heartbeat(alice)
    seen = now(presence)
    async with subscribed(redis_url, plans) as subscriber:
        presence.clock.advance(61)
        await subscriber.wait_for(1)  # the sweeper's offline event

    [state] = (await presence.snapshot(alice, plans)).json()["participants"]
    assert state == {"user_id": str(alice.id), "status": "offline", "last_seen_at": seen}


async def test_former_participants_are_not_listed_and_may_not_look(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    plans = await create_conversation(pool, alice, bob=(bob, "admin"))
    await leave(pool, plans, bob)

    assert_problem(await presence.snapshot(bob, plans), 403, "RGP.RBAC.FORBIDDEN")
    participants = (await presence.snapshot(alice, plans)).json()["participants"]
    assert [p["user_id"] for p in participants] == [str(alice.id)]


async def test_non_participants_and_unknown_conversations_are_forbidden(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    plans = await create_conversation(pool, alice)

    assert_problem(await presence.snapshot(bob, plans), 403, "RGP.RBAC.FORBIDDEN")
    assert_problem(await presence.snapshot(bob, uuid4()), 403, "RGP.RBAC.FORBIDDEN")


async def test_a_malformed_conversation_id_is_an_invalid_request(api: Api, presence: Presence) -> None:
    alice = await api.persona("alice")

    problem = assert_problem(await presence.snapshot(alice, "plans"), 400, "invalid_request")
    assert problem["details"]["errors"] == [
        {"field": "conversation_id", "message": "must be a hyphenated UUID"}
    ]


async def test_the_snapshot_needs_a_session_but_no_csrf(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice = await api.persona("alice")
    plans = await create_conversation(pool, alice)

    assert_problem(
        await presence.http.get(f"/api/conversations/{plans}/presence"), 401, "RGP.AUTH.MISSING_SESSION"
    )
    async with presence.browser(alice, csrf=False) as browser:
        assert (await browser.get(f"/api/conversations/{plans}/presence")).status_code == 200


async def test_the_streamer_snapshot_matches_the_route(
    api: Api, presence: Presence, pool: asyncpg.Pool, redis: Redis
) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    plans = await create_conversation(pool, alice, bob=(bob, "member"))
    await presence.heartbeat(bob)
    await presence.typing(bob, plans, 10)

    participants, typing = await snapshot(redis, plans, [bob.id, alice.id], clock=presence.clock)

    route = (await presence.snapshot(alice, plans)).json()
    assert [p.to_wire() for p in participants] == route["participants"]
    assert [t.to_wire() for t in typing] == route["typing"]
    assert [p.user_id for p in participants] == sorted([alice.id, bob.id], key=UUID.__str__)
