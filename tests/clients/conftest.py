"""The clients' tests run against the real stack behind the Caddy edge (one origin, as users run it), one
database and one stack for the whole package (``pool`` empties the tables after each test).

The stack's settings keep the tests quick: a short ``retry:`` and keepalive (drops and logouts are noticed
at once), generous default and per-IP login limits (the personas log in a lot, all from 127.0.0.1), the
rate-limit rule book reloaded every second (tables are emptied between tests), and the ``echo`` assistant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import pytest

from tests.support.api import Api, Persona, remote_api
from tests.support.servers import SuiteServers, package_database
from tests.support.stack import Stack, running_stack
from threadline_client import ThreadlineClient

CLIENT_STACK_ENV = {
    "THREADLINE_STREAM_RETRY_MS": "10",
    "THREADLINE_STREAM_KEEPALIVE_SECONDS": "1",
    "THREADLINE_LOGIN_PER_IP_PER_MINUTE": "10000",
    "THREADLINE_RATE_LIMIT_DEFAULT_RPS": "10000",
    "THREADLINE_RATE_LIMIT_DEFAULT_BURST": "10000",
    "THREADLINE_RATE_LIMIT_RELOAD_SECONDS": "1",
    "THREADLINE_ASSISTANT_PROVIDER": "echo",
    "THREADLINE_ECHO_DELAY_MS": "30",
}


@pytest.fixture(scope="package")
def database_url(servers: SuiteServers) -> Iterator[str]:
    yield from package_database(servers, "tests.clients")


@pytest.fixture(scope="package")
def stack(
    database_url: str, servers: SuiteServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with running_stack(
        database_url,
        servers.redis_url,
        tmp_path_factory.mktemp("clients"),
        CLIENT_STACK_ENV,
        edge=True,
    ) as started:
        yield started


@pytest.fixture
async def api(stack: Stack, pool: asyncpg.Pool) -> AsyncIterator[Api]:
    """Personas and raw requests through the edge (tables emptied after each test by ``pool``)."""
    async with remote_api(stack.edge_url) as running:
        yield running


ClientFor = Callable[[Persona], ThreadlineClient]


async def lift_posting_limit(admin: ThreadlineClient) -> None:
    """Raise the ``conversation.post`` profile (5 a second) out of the way of tests that post fast. The
    next test's seeded profile comes back within the rule book's reload interval (1 s here)."""
    posting = next(p for p in await admin.rate_limit_profiles() if p.name == "conversation.post")
    await admin.update_rate_limit_profile(posting.id, {"requests_per_second": 10000, "burst": 10000})


@pytest.fixture
async def client_for(stack: Stack) -> AsyncIterator[ClientFor]:
    """``client_for(persona)``: a ThreadlineClient on the edge with the persona's bearer token."""
    opened: list[ThreadlineClient] = []

    def open_client(persona: Persona) -> ThreadlineClient:
        client = ThreadlineClient(stack.edge_url, token=persona.token)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.aclose()
