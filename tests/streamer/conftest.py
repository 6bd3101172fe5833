"""The stream tests run the real processes, with rate limits off (they post a lot) and short intervals: one
stack and one database for the package."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.support.api import Api, remote_api
from tests.support.servers import SuiteServers, package_database
from tests.support.stack import Stack, running_stack, start_again

STREAM_ENV = {
    "THREADLINE_RATE_LIMIT_ENABLED": "false",
    "THREADLINE_STREAM_KEEPALIVE_SECONDS": "2",
    "THREADLINE_STREAM_QUEUE_SIZE": "64",
}


@pytest.fixture(scope="package")
def database_url(servers: SuiteServers) -> Iterator[str]:
    """One database for the package (``pool`` empties the tables after each test), as the stack is one."""
    yield from package_database(servers, "tests.streamer")


@pytest.fixture(scope="package")
def package_stack(
    database_url: str, servers: SuiteServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with running_stack(
        database_url, servers.redis_url, tmp_path_factory.mktemp("stack"), STREAM_ENV
    ) as started:
        yield started


@pytest.fixture
async def stack(package_stack: Stack) -> Stack:
    """The package's stack (started once: seven module stacks cost 7-8 s each), its streamer started again
    if an earlier test stopped it (test_stream_restarts kills it and sends it SIGTERM)."""
    await start_again(package_stack.processes["streamer"])
    return package_stack


@pytest.fixture
async def api(stack: Stack, pool: asyncpg.Pool) -> AsyncIterator[Api]:
    """The api process of the stack (tables emptied after each test by ``pool``)."""
    async with remote_api(stack.url("api")) as running:
        yield running
