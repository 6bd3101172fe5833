"""Session fixtures: real PostgreSQL and Redis (started by the suite), a database per test module, and the
real services as processes for end-to-end tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support.api import Api, running_api
from tests.support.servers import (
    SuiteServers,
    create_database,
    database_name,
    drop_database,
    reset_database,
    start_servers,
)
from tests.support.stack import Stack, running_stack
from threadline_devstack.servers import EmbeddedRedis
from threadline_shared.db import create_pool

# Every service the suite starts, in-process or as a process (they inherit THREADLINE_*), waits up to 5 s for
# a rate-limit decision instead of 250 ms: on a loaded CI host a slow answer would fail open, and a test that
# expects a 429 or RateLimit headers would see neither. The fail-open tests stop Redis, which refuses at once.
os.environ.setdefault("THREADLINE_RATE_LIMIT_REDIS_TIMEOUT_MS", "5000")


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteServers]:
    started = start_servers(tmp_path_factory.mktemp("servers"))
    try:
        yield started
    finally:
        started.redis.stop()
        started.postgres.stop()


@pytest.fixture(scope="module")
def database_url(servers: SuiteServers, request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database of this test module's own, cloned from the template."""
    name = database_name(request.module.__name__)
    url = create_database(servers, name)
    yield url
    drop_database(servers, name)


@pytest.fixture
def redis_url(servers: SuiteServers) -> str:
    return servers.redis_url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own, for tests that stop it (the suite's Redis stays up for the others)."""
    server = EmbeddedRedis(tmp_path / "redis", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the module's database, left empty (TRUNCATE) after the test."""
    pool = await create_pool(database_url, min_size=1, max_size=30)
    try:
        yield pool
    finally:
        async with pool.acquire() as conn:
            await reset_database(conn)
        await pool.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture(scope="module")
def stack(
    database_url: str, servers: SuiteServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """api, streamer, presence and the assistant worker as processes on free ports (THREADLINE_ENV=test)."""
    with running_stack(database_url, servers.redis_url, tmp_path_factory.mktemp("stack")) as started:
        yield started


@pytest.fixture
async def api(pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str) -> AsyncIterator[Api]:
    """The api over real HTTP on the module's database, with a FakeClock (``api.clock``); tables and Redis
    are emptied after the test."""
    async with running_api(database_url, redis_url) as running:
        yield running
