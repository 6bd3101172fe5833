"""PostgreSQL unreachable (contract 1.7): the api and the streamer answer 503 ``database_unavailable``, not a
500, and recover by themselves once it is back. The services run in-process on real sockets; their database
connections pass through a TCP proxy that cuts them and then refuses new ones (the network to PostgreSQL
is down)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from tests.streamer.test_connect_fastpath import running_streamer
from tests.support.api import running_api
from tests.support.conversations import create_conversation
from tests.support.drop_proxy import DropProxy, drop_proxy
from tests.support.problems import assert_problem


def through(proxy: DropProxy, database_url: str) -> str:
    """``database_url`` with its host and port replaced by the proxy's (user and password kept)."""
    parts = urlsplit(database_url)
    credentials, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{credentials}{at}{urlsplit(proxy.url).netloc}"))


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[DropProxy]:
    parts = urlsplit(database_url)
    async with drop_proxy(f"http://{parts.hostname}:{parts.port}") as running:
        yield running


def network_down(proxy: DropProxy) -> None:
    proxy.refusing = True
    for link in list(proxy.links):
        link.abort()


async def test_api_and_streamer_answer_503_while_postgres_is_unreachable_and_recover(
    proxy: DropProxy, pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> None:
    url = through(proxy, database_url)
    async with (
        running_api(url, redis_url) as api,
        running_streamer(url, redis_url, api.clock) as (streamer, _),
        httpx.AsyncClient(base_url=streamer) as streams,
    ):
        alice = await api.persona("alice")
        conversation = await create_conversation(api, alice)
        stream_path = f"/api/stream/conversations/{conversation}"

        network_down(proxy)
        assert_problem(await api.get("/api/conversations", alice), 503, "database_unavailable")
        for cursor in ({}, {"Last-Event-ID": "0"}):  # the lean connect path, then the full one
            refused = await streams.get(stream_path, headers={**alice.bearer, **cursor})
            assert_problem(refused, 503, "database_unavailable")

        proxy.refusing = False
        assert (await api.get("/api/conversations", alice)).status_code == 200
        async with streams.stream("GET", stream_path, headers=alice.bearer) as live:
            assert live.status_code == 200
