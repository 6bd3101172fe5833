"""Rate limits across real api processes (contract 8.4, 8.8, 8.9): two processes share one bucket; a profile
change made through one applies on the other within a second; with Redis down requests are served without
limits and limiting resumes by itself when Redis returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.api import Api, Persona, remote_api
from threadline_devstack.servers import EmbeddedRedis, free_port
from threadline_devstack.services import SERVICES, ServiceProcess, service_environment

pytestmark = pytest.mark.e2e
API = next(spec for spec in SERVICES if spec.name == "api")


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    redis = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port(), durable=False)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture(scope="module")
def two_apis(
    database_url: str, own_redis: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServiceProcess]]:
    env = service_environment(database_url, own_redis.url())
    env.update({"THREADLINE_ENV": "test", "THREADLINE_PASSWORD_HASHING": "fast"})
    logs = Path(tmp_path_factory.mktemp("apis"))
    processes = [ServiceProcess(API, free_port(), env, log_path=logs / f"api{i}.log") for i in range(2)]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_ready(60)
        yield processes
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
async def apis(two_apis: list[ServiceProcess], pool: asyncpg.Pool) -> AsyncIterator[tuple[Api, Api]]:
    async with remote_api(two_apis[0].url) as first, remote_api(two_apis[1].url) as second:
        yield first, second


async def make_profile(api: Api, admin: Persona, burst: int) -> str:
    response = await api.post(
        "/api/admin/limits/profiles",
        admin,
        json={"name": "shared", "params": {"requests_per_second": 0.1, "burst": burst}},
    )
    assert response.status_code == 201, response.text
    profile_id: str = response.json()["id"]
    assigned = await api.post(
        "/api/admin/limits/assignments",
        admin,
        json={"profile_id": profile_id, "method": "GET", "path": "/api/users"},
    )
    assert assigned.status_code == 201
    return profile_id


async def wait_for_profile(api: Api, user: Persona, profile: str, burst: str) -> float:
    """Seconds until ``GET /api/users`` on ``api`` reports ``profile`` with limit ``burst``."""
    started = time.monotonic()
    async with asyncio.timeout(15):
        while True:
            probe = await api.get("/api/users", user, params={"limit": "1"})
            if (
                probe.headers.get("x-ratelimit-profile") == profile
                and probe.headers["ratelimit-limit"] == burst
            ):
                return time.monotonic() - started
            await asyncio.sleep(0.02)


async def test_two_processes_share_one_bucket_and_two_users_do_not(apis: tuple[Api, Api]) -> None:
    first, second = apis
    alice = await first.persona("alice")
    bob = await first.persona("bob")
    await make_profile(first, alice, burst=4)
    await wait_for_profile(first, alice, "shared", "4")
    await wait_for_profile(second, bob, "shared", "4")
    # alice has used one request of her bucket on the first process; bob one of his on the second
    statuses = [(await api.get("/api/users", alice)).status_code for api in (second, first, second, first)]
    assert statuses == [200, 200, 200, 429]
    assert (await second.get("/api/users", bob)).status_code == 200


async def test_a_profile_change_applies_on_the_other_process_by_notify(apis: tuple[Api, Api]) -> None:
    """8.8: within 1 s through ``NOTIFY tl_limits`` (typically tens of milliseconds here), where the periodic
    reload would take up to 60 s; the bound leaves room for a contended host."""
    first, second = apis
    alice = await first.persona("alice")
    profile_id = await make_profile(first, alice, burst=50)
    await wait_for_profile(second, alice, "shared", "50")

    changed = await first.request(
        "PUT",
        f"/api/admin/limits/profiles/{profile_id}",
        alice,
        json={"params": {"requests_per_second": 1, "burst": 7}},
    )
    assert changed.status_code == 200
    assert await wait_for_profile(second, alice, "shared", "7") < 5.0


async def test_requests_are_served_while_redis_is_down_and_limited_again_after(
    apis: tuple[Api, Api], own_redis: EmbeddedRedis
) -> None:
    first, _ = apis
    alice = await first.persona("alice")
    await make_profile(first, alice, burst=1)
    await wait_for_profile(first, alice, "shared", "1")
    assert (await first.get("/api/users", alice)).status_code == 429

    own_redis.stop()
    try:
        down = [await first.get("/api/users", alice) for _ in range(3)]
        assert [r.status_code for r in down] == [200, 200, 200]
        assert all("x-ratelimit-profile" not in r.headers for r in down)
        metrics = (await first.http.get("/metrics")).text
        assert 'threadline_rate_limit_fail_open_total{profile="shared"}' in metrics
    finally:
        own_redis.start()
    async with asyncio.timeout(10):
        while True:
            response = await first.get("/api/users", alice)
            if response.headers.get("x-ratelimit-profile") == "shared":
                break
            await asyncio.sleep(0.1)
    assert (await first.get("/api/users", alice)).status_code == 429
