"""Two presence processes against one Redis (contract 7.5, DESIGN 3): heartbeats for the same users land
on both, both sweepers race for every expiry, and still each transition is published exactly once."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from tests.presence.support import presence_events, subscribed, typing_events, user_with_token
from tests.support.factories import create_conversation
from tests.support.servers import SuiteServers
from tests.support.stack import python_env
from threadline_devstack.servers import free_port
from threadline_devstack.services import SERVICES, ServiceProcess

pytestmark = pytest.mark.e2e
PRESENCE = next(spec for spec in SERVICES if spec.name == "presence")
USERS = 12


@pytest.fixture(scope="module")
def replicas(
    database_url: str, servers: SuiteServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Two presence processes: a three-second presence timeout, sweeps every 10 ms (so they race)."""
    log_dir = Path(tmp_path_factory.mktemp("replicas"))
    env = {
        **python_env(),
        "DATABASE_URL": database_url,
        "REDIS_URL": servers.redis_url,
        "THREADLINE_ENV": "test",
        "THREADLINE_PRESENCE_TIMEOUT_SECONDS": "3",
        "THREADLINE_PRESENCE_SWEEP_INTERVAL_MS": "10",
        "PYTHONUNBUFFERED": "1",
    }
    processes = [
        ServiceProcess(PRESENCE, free_port(), env, log_path=log_dir / f"presence-{n}.log") for n in (1, 2)
    ]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_ready(60)
        yield [process.url for process in processes]
    finally:
        for process in processes:
            process.stop()


async def test_each_presence_transition_is_published_once(
    replicas: list[str], pool: asyncpg.Pool, redis_url: str
) -> None:
    users = [await user_with_token(pool, f"user{n}") for n in range(USERS)]
    plans = await create_conversation(pool, users[0][0])
    await pool.executemany(
        "INSERT INTO participants (conversation_id, user_id, role) VALUES ($1, $2, 'member')",
        [(plans, user_id) for user_id, _ in users[1:]],
    )
    replica = itertools.cycle(replicas)

    async with subscribed(redis_url, plans) as subscriber, httpx.AsyncClient() as http:

        async def heartbeats(status: str) -> None:
            calls = [
                http.post(
                    f"{next(replica)}/api/presence/heartbeat",
                    headers={"Authorization": f"Bearer {token}"},
                    json={"status": status},
                )
                for _, token in users
                for _ in range(4)  # four devices of each user, spread over both replicas
            ]
            assert {response.status_code for response in await asyncio.gather(*calls)} == {204}

        await heartbeats("online")
        await subscriber.wait_for(USERS, timeout=10)
        await heartbeats("away")
        await subscriber.wait_for(2 * USERS, timeout=10)
        # No more heartbeats: after the timeout both sweepers race for every user.
        await subscriber.wait_until(lambda received: all_gone_offline(received, users), timeout=30)
        received = await subscriber.quiet(0.5)  # a second publish of an offline would arrive now

    events = presence_events(received)
    for user_id, _ in users:
        mine = [payload["status"] for _, payload in events if payload["user_id"] == str(user_id)]
        # A transition published twice would show up as the same status twice in a row.
        assert all(before != after for before, after in itertools.pairwise(mine)), mine
        # Online, away, offline; a machine stalled for a whole timeout between two steps adds an offline
        # (and an online) in between, each still published once.
        assert mine[0] == "online" and "away" in mine and mine[-1] == "offline", mine


def all_gone_offline(received: Sequence[tuple[UUID, dict[str, Any]]], users: list[tuple[UUID, str]]) -> bool:
    """Whether every user's latest presence event, after their ``away``, is ``offline``."""
    latest: dict[str, list[str]] = {}
    for _, payload in presence_events(received):
        latest.setdefault(payload["user_id"], []).append(payload["status"])
    mine = [latest.get(str(user_id), []) for user_id, _ in users]
    return all("away" in statuses and statuses[-1] == "offline" for statuses in mine)


async def test_each_typing_expiry_is_published_once(
    replicas: list[str], pool: asyncpg.Pool, redis_url: str
) -> None:
    users = [await user_with_token(pool, f"typist{n}") for n in range(USERS)]
    plans = await create_conversation(pool, users[0][0])
    await pool.executemany(
        "INSERT INTO participants (conversation_id, user_id, role) VALUES ($1, $2, 'member')",
        [(plans, user_id) for user_id, _ in users[1:]],
    )

    async with subscribed(redis_url, plans) as subscriber, httpx.AsyncClient() as http:
        calls = [
            http.post(
                f"{url}/api/typing",
                headers={"Authorization": f"Bearer {token}"},
                json={"conversation_id": str(plans), "seconds": 1},
            )
            for (_, token), url in zip(users, itertools.cycle(replicas), strict=False)
        ]
        assert {response.status_code for response in await asyncio.gather(*calls)} == {204}
        await subscriber.wait_for(2 * USERS, timeout=15)  # a start and, after a second, a stop each
        received = await subscriber.quiet(0.5)

    events = typing_events(received)
    assert len(events) == 2 * USERS
    per_user = Counter(UUID(payload["user_id"]) for _, payload in events)
    assert per_user == {user_id: 2 for user_id, _ in users}
