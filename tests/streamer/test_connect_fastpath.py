"""The connect's lean path (threadline_streamer.fastpath, served by threadline_streamer.protocol): a plain
connect is set up below ASGI and looks exactly like one the full application sets up; everything else is
answered by the full application, once.

The streamer runs in-process here (its own HTTP protocol, real sockets, real PostgreSQL and Redis) and shares
the api's FakeClock, so that session times can be moved. The end-to-end stream tests (the stack's streamer
process) take this path too for every new stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from tests.support.api import Api, Persona, running_api
from tests.support.conversations import add_participant, create_conversation
from tests.support.http import serve_app
from tests.support.messages import post_root
from tests.support.problems import assert_problem
from tests.support.sse import open_stream
from threadline_shared.clock import FakeClock
from threadline_streamer.app import create_app
from threadline_streamer.fastpath import FAST_CONNECTS
from threadline_streamer.hub import Hub
from threadline_streamer.protocol import StreamerHttpProtocol
from threadline_streamer.settings import StreamerSettings

VARYING = {b"date", b"x-request-id"}


@asynccontextmanager
async def running_streamer(
    database_url: str, redis_url: str, clock: FakeClock, **overrides: Any
) -> AsyncIterator[tuple[str, Starlette]]:
    overrides.setdefault("rate_limit_enabled", False)
    settings = StreamerSettings.load(env="test", database_url=database_url, redis_url=redis_url, **overrides)
    assert isinstance(settings, StreamerSettings)
    app = create_app(settings, clock=clock)
    async with serve_app(app, http=StreamerHttpProtocol) as url:
        yield url, app


@pytest.fixture
async def local_api(
    pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str
) -> AsyncIterator[Api]:
    """The api in-process with a FakeClock; tables and Redis are emptied after the test."""
    async with running_api(database_url, redis_url) as running:
        yield running


@pytest.fixture
async def streamer(local_api: Api, database_url: str, redis_url: str) -> AsyncIterator[tuple[str, Starlette]]:
    async with running_streamer(database_url, redis_url, local_api.clock) as running:
        yield running


async def members(api: Api) -> tuple[Persona, Persona, str]:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation = await create_conversation(api, alice, is_group=True)
    await add_participant(api, alice, conversation, bob)
    return alice, bob, conversation


def fast_connects() -> float:
    return FAST_CONNECTS._value.get()


def stable(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes | None]]:
    """Header names in order, with the values that do not vary between two responses."""
    return [(name.lower(), None if name.lower() in VARYING else value) for name, value in headers]


async def last_seq(pool: asyncpg.Pool, conversation: str) -> int:
    return int(await pool.fetchval("SELECT last_seq FROM conversations WHERE id = $1", conversation))


async def test_a_plain_connect_is_set_up_below_asgi_exactly_as_the_full_application_would(
    local_api: Api, streamer: tuple[str, Starlette], pool: asyncpg.Pool
) -> None:
    url, _ = streamer
    alice, bob, conversation = await members(local_api)
    before = fast_connects()
    async with open_stream(url, conversation, alice.token) as lean:
        assert fast_connects() == before + 1
        # A resume goes the full way (its replay is the application's): here one with nothing to replay.
        resume_at = await last_seq(pool, conversation)
        async with open_stream(url, conversation, alice.token, last_event_id=resume_at) as full:
            assert fast_connects() == before + 1
            assert lean.response.status_code == full.response.status_code == 200
            assert stable(lean.response.headers.raw) == stable(full.response.headers.raw)
            assert lean.response.headers["x-request-id"] != full.response.headers["x-request-id"]
            await post_root(local_api, bob, conversation)
            seen_lean = [(e.event, e.id) for e in await lean.durable(3)]
            seen_full = [(e.event, e.id) for e in await full.durable(3)]
    assert lean.retry == full.retry == 3000
    assert seen_lean == seen_full
    assert [event for event, _ in seen_lean] == ["thread.new", "message.created", "thread.activity"]


async def test_the_clients_request_id_is_echoed(local_api: Api, streamer: tuple[str, Starlette]) -> None:
    url, _ = streamer
    alice, _, conversation = await members(local_api)
    before = fast_connects()
    async with open_stream(url, conversation, alice.token, headers={"X-Request-ID": "trace-42"}) as stream:
        assert stream.response.headers["x-request-id"] == "trace-42"
    assert fast_connects() == before + 1


async def test_a_cookie_connect_is_taken_and_one_due_for_rotation_is_rotated_by_the_full_application(
    local_api: Api, streamer: tuple[str, Starlette]
) -> None:
    url, _ = streamer
    alice, _, conversation = await members(local_api)
    cookie = {"Cookie": f"SESSION_ID={alice.token}"}
    before = fast_connects()
    async with open_stream(url, conversation, None, headers=cookie) as stream:
        assert stream.response.status_code == 200
        assert "set-cookie" not in stream.response.headers
    assert fast_connects() == before + 1
    local_api.clock.advance(seconds=local_api.settings.session_idle_seconds // 2 + 1)
    async with open_stream(url, conversation, None, headers=cookie) as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["x-session-rotated"] == "1"
        assert any(v.startswith("SESSION_ID=") for v in stream.response.headers.get_list("set-cookie"))
    assert fast_connects() == before + 1


async def test_a_cookie_connect_that_rotates_and_is_refused_still_hands_over_the_new_session(
    local_api: Api, streamer: tuple[str, Starlette]
) -> None:
    """A bad cursor (400) after the rotation: the old cookie no longer works, so the refusal carries the
    new cookies (3.5), and the new session connects."""
    url, _ = streamer
    alice, _, conversation = await members(local_api)
    local_api.clock.advance(seconds=local_api.settings.session_idle_seconds // 2 + 1)
    async with httpx.AsyncClient(base_url=url) as client:
        refused = await client.get(
            f"/api/stream/conversations/{conversation}",
            headers={"Cookie": f"SESSION_ID={alice.token}", "Last-Event-ID": "soon"},
        )
    assert_problem(refused, 400, "invalid_request")
    assert refused.headers["x-session-rotated"] == "1"
    renewed = refused.cookies["SESSION_ID"]
    async with open_stream(url, conversation, None, headers={"Cookie": f"SESSION_ID={renewed}"}) as stream:
        assert stream.response.status_code == 200


async def test_a_stale_last_seen_at_is_refreshed_by_the_lean_path(
    local_api: Api, streamer: tuple[str, Starlette], pool: asyncpg.Pool
) -> None:
    url, _ = streamer
    alice, _, conversation = await members(local_api)
    local_api.clock.advance(seconds=120)
    before = fast_connects()
    async with open_stream(url, conversation, alice.token) as stream:
        assert stream.response.status_code == 200
    assert fast_connects() == before + 1
    seen = await pool.fetchval(
        "SELECT last_seen_at FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", alice.id
    )
    assert seen == local_api.clock.now()


async def test_refusals_are_the_full_applications_answers(
    local_api: Api, streamer: tuple[str, Starlette]
) -> None:
    url, _ = streamer
    alice, _, conversation = await members(local_api)
    carol = await local_api.persona("carol")
    before = fast_connects()
    async with open_stream(url, conversation, carol.token) as stream:
        await stream.response.aread()
        assert_problem(stream.response, 403, "RGP.RBAC.FORBIDDEN")
    async with open_stream(url, conversation, "not-a-token") as stream:
        await stream.response.aread()
        assert_problem(stream.response, 401, "RGP.AUTH.INVALID_SESSION")
    assert (await local_api.post("/api/auth/logout", alice)).status_code == 200
    async with open_stream(url, conversation, alice.token) as stream:
        await stream.response.aread()
        assert_problem(stream.response, 401, "RGP.AUTH.INVALID_SESSION")
    assert fast_connects() == before


async def test_a_rate_limited_connect_gets_the_429_and_allowed_ones_are_charged_once(
    local_api: Api, database_url: str, redis_url: str
) -> None:
    alice, _, conversation = await members(local_api)
    limits = {"rate_limit_enabled": True, "rate_limit_default_rps": 0.01, "rate_limit_default_burst": 2}
    async with running_streamer(database_url, redis_url, local_api.clock, **limits) as (url, _):
        remaining = []
        for _ in range(2):
            async with open_stream(url, conversation, alice.token) as stream:
                assert stream.response.status_code == 200
                remaining.append(stream.response.headers["ratelimit-remaining"])
        assert remaining == ["1", "0"]  # a second charge for either would have refused the second
        async with open_stream(url, conversation, alice.token) as stream:
            await stream.response.aread()
            assert_problem(stream.response, 429, "RGP.RATE_LIMITED")
            assert int(stream.response.headers["retry-after"]) > 0


async def test_a_client_gone_before_its_answer_leaves_no_subscription_behind(
    local_api: Api, streamer: tuple[str, Starlette]
) -> None:
    url, app = streamer
    alice, _, conversation = await members(local_api)
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"GET /api/stream/conversations/{conversation} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {alice.token}\r\n\r\n"
    ).encode()
    for _ in range(5):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        writer.close()
    hub: Hub = app.state.hub
    async with asyncio.timeout(5):
        while hub.connections():
            await asyncio.sleep(0.02)
    async with open_stream(url, conversation, alice.token) as stream:  # the service is still well
        assert stream.response.status_code == 200
        assert len(hub.connections()) == 1


async def test_a_request_with_a_body_or_an_origin_goes_the_full_way(
    local_api: Api, streamer: tuple[str, Starlette]
) -> None:
    url, _ = streamer
    alice, _, conversation = await members(local_api)
    before = fast_connects()
    async with httpx.AsyncClient(base_url=url) as http:
        origin = {"Authorization": f"Bearer {alice.token}", "Origin": "https://elsewhere.example"}
        async with http.stream(
            "GET", f"/api/stream/conversations/{conversation}", headers=origin
        ) as response:
            assert response.status_code == 200
            assert "access-control-allow-origin" not in response.headers  # not an allowed origin
    async with open_stream(url, conversation, alice.token, params={"since": "0"}) as stream:
        assert stream.response.status_code == 200
    assert fast_connects() == before
