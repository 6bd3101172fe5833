"""The stream tests run the real processes, with rate limits off (they post a lot) and short intervals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.support.api import Api, remote_api
from tests.support.servers import SuiteServers
from tests.support.stack import Stack, running_stack

STREAM_ENV = {
    "THREADLINE_RATE_LIMIT_ENABLED": "false",
    "THREADLINE_STREAM_KEEPALIVE_SECONDS": "2",
    "THREADLINE_STREAM_QUEUE_SIZE": "64",
}


@pytest.fixture(scope="module")
def stack(
    database_url: str, servers: SuiteServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with running_stack(
        database_url, servers.redis_url, tmp_path_factory.mktemp("stack"), STREAM_ENV
    ) as started:
        yield started


@pytest.fixture
async def api(stack: Stack, pool: asyncpg.Pool) -> AsyncIterator[Api]:
    """The api process of the stack (tables emptied after each test by ``pool``)."""
    async with remote_api(stack.url("api")) as running:
        yield running
