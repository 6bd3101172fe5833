"""Login throttling (contract 3.10, 8.4, 8.6): GCRA buckets of N per minute per client IP and per account;
every attempt counts; a denial is 429 with Retry-After and the RateLimit headers; Redis down fails open."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support.api import PASSWORD, Api, running_api
from tests.support.problems import assert_problem
from threadline_devstack.servers import free_port


@pytest.fixture
async def strict_ip(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> AsyncIterator[Api]:
    async with running_api(
        database_url, redis_url, login_per_ip_per_minute=3, login_per_account_per_minute=100
    ) as running:
        await running.persona("alice")
        await redis.flushdb()  # the persona's own login does not count here
        yield running


@pytest.fixture
async def strict_account(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> AsyncIterator[Api]:
    async with running_api(
        database_url, redis_url, login_per_ip_per_minute=100, login_per_account_per_minute=2
    ) as running:
        await running.persona("alice")
        await running.persona("bob")
        await redis.flushdb()
        yield running


async def test_the_ip_bucket_denies_after_its_burst(strict_ip: Api) -> None:
    api = strict_ip
    attempts = [await api.login(name, "wrong password") for name in ("alice", "nobody", "someone")]
    denied = await api.login("alice")

    assert [r.status_code for r in attempts] == [401, 401, 401]
    assert [r.headers["ratelimit-remaining"] for r in attempts] == ["2", "1", "0"]
    problem = assert_problem(denied, 429, "RGP.RATE_LIMITED")
    assert problem["message"] == "rate limit exceeded"
    assert denied.headers["retry-after"] == "20"
    assert problem["details"] == {"retry_after_seconds": 20}
    assert denied.headers["ratelimit-limit"] == "3"
    assert denied.headers["ratelimit-remaining"] == "0"
    assert denied.headers["ratelimit-reset"] == "60"
    assert denied.headers["x-ratelimit-profile"] == "auth.login"


async def test_the_ip_bucket_refills_at_its_rate(strict_ip: Api) -> None:
    api = strict_ip
    for _ in range(3):
        await api.login("alice")
    assert (await api.login("alice")).status_code == 429
    api.clock.advance(20)
    assert (await api.login("alice")).status_code == 200
    assert (await api.login("alice")).status_code == 429


async def test_the_ip_limit_applies_before_the_body_is_read(strict_ip: Api) -> None:
    api = strict_ip
    for _ in range(3):
        await api.login("alice")
    response = await api.http.post(
        "/api/auth/login", content=b"{broken", headers={"content-type": "application/json"}
    )
    assert_problem(response, 429, "RGP.RATE_LIMITED")


async def test_the_account_bucket_counts_every_attempt_on_that_account(strict_account: Api) -> None:
    api = strict_account
    first = await api.login("bob", "wrong password")
    second = await api.login("BOB@example.com")
    third = await api.login("bob")

    assert [first.status_code, second.status_code] == [401, 200]
    problem = assert_problem(third, 429, "RGP.RATE_LIMITED")
    assert third.headers["retry-after"] == "30"
    assert problem["details"]["retry_after_seconds"] == 30
    assert (await api.login("alice")).status_code == 200, "another account is not limited"


async def test_unknown_identifiers_are_limited_by_their_lowercased_name(strict_account: Api) -> None:
    api = strict_account
    for _ in range(2):
        assert (await api.login("Ghost", PASSWORD)).status_code == 401
    assert_problem(await api.login("GHOST", PASSWORD), 429, "RGP.RATE_LIMITED")


async def test_login_fails_open_when_redis_is_down(pool: asyncpg.Pool, database_url: str) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    async with running_api(database_url, dead_redis, login_per_ip_per_minute=1) as api:
        await api.persona("alice")
        responses = [await api.login("alice") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all("ratelimit-limit" not in r.headers for r in responses)


async def test_limits_can_be_switched_off(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> None:
    async with running_api(
        database_url, redis_url, login_per_ip_per_minute=1, rate_limit_enabled=False
    ) as api:
        await api.persona("alice")
        responses = [await api.login("alice") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
