"""The heartbeat's lean path (threadline_presence.fastpath) answers exactly like the full application, and
hands everything but the plain case over to it: every other heartbeat test runs through it too. The tests
here run it both ways: below ASGI in the service's own HTTP protocol (threadline_presence.protocol), and as
ASGI middleware under plain uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from tests.presence.conftest import Presence, running_presence
from tests.support.api import Api
from tests.support.problems import assert_problem
from threadline_presence.fastpath import parse_status
from threadline_presence.protocol import PresenceHttpProtocol
from threadline_shared.dto.enums import PresenceStatus


@pytest.fixture(params=["protocol", "asgi"])
async def presence(
    request: pytest.FixtureRequest, api: Api, database_url: str, redis_url: str
) -> AsyncIterator[Presence]:
    protocol = PresenceHttpProtocol if request.param == "protocol" else "httptools"
    async with running_presence(database_url, redis_url, api.clock, protocol=protocol) as running:
        yield running


def fast_count() -> float:
    return REGISTRY.get_sample_value("threadline_presence_fast_heartbeats_total") or 0.0


async def test_a_bearer_heartbeat_is_answered_by_the_lean_path_with_the_full_paths_headers(
    api: Api, presence: Presence
) -> None:
    alice = await api.persona("alice")
    before = fast_count()
    fast = await presence.http.post(
        "/api/presence/heartbeat", json={"status": "online"}, headers={**alice.bearer, "X-Request-ID": "hb-1"}
    )
    assert fast_count() == before + 1
    async with presence.browser(alice) as browser:  # cookie requests always take the full path
        full = await browser.post("/api/presence/heartbeat", json={"status": "online"})
    assert fast_count() == before + 1

    assert (fast.status_code, full.status_code) == (204, 204)
    assert fast.content == full.content == b""
    assert set(fast.headers) == set(full.headers)
    for name in (
        "x-ratelimit-profile",
        "ratelimit-limit",
        "content-security-policy",
        "x-content-type-options",
    ):
        assert fast.headers[name] == full.headers[name], name
    assert fast.headers["x-request-id"] == "hb-1"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", PresenceStatus.ONLINE),
        (b"{}", PresenceStatus.ONLINE),
        (b'{"status":null}', PresenceStatus.ONLINE),
        (b'{"status":"away"}', PresenceStatus.AWAY),
        (b'{"status":"online"}', PresenceStatus.ONLINE),
        (b'{"status":"offline"}', None),
        (b'{"status":"away","x":1}', None),
        (b'{"status":1}', None),
        (b"[]", None),
        (b"{", None),
    ],
)
def test_only_plain_bodies_are_taken(body: bytes, status: PresenceStatus | None) -> None:
    assert parse_status(body) is status


async def test_a_session_due_for_its_last_seen_write_goes_the_full_way_once(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    alice = await api.persona("alice")
    presence.clock.advance(31)  # last_seen_at is written at most every 30 s
    before = fast_count()

    assert (await presence.heartbeat(alice)).status_code == 204
    assert fast_count() == before, "the full path wrote last_seen_at"
    seen = await pool.fetchval("SELECT last_seen_at FROM sessions WHERE user_id = $1", alice.id)
    assert seen == presence.clock.now()
    assert (await presence.heartbeat(alice)).status_code == 204
    assert fast_count() == before + 1


async def test_a_revoked_or_expired_session_gets_the_full_paths_answer(api: Api, presence: Presence) -> None:
    alice, bob = await api.persona("alice"), await api.persona("bob")
    assert (await api.post("/api/auth/logout", alice)).status_code == 200
    assert_problem(await presence.heartbeat(alice), 401, "RGP.AUTH.INVALID_SESSION")

    presence.clock.advance(timedelta(hours=9).total_seconds())
    assert_problem(await presence.heartbeat(bob), 401, "RGP.AUTH.EXPIRED")


async def test_a_denied_heartbeat_gets_the_429_of_the_full_path(
    api: Api, database_url: str, redis_url: str
) -> None:
    alice = await api.persona("alice")
    async with running_presence(
        database_url, redis_url, api.clock, rate_limit_default_rps=0.01, rate_limit_default_burst=2
    ) as presence:  # the service's own protocol; the other tests here run under both
        answers = [await presence.heartbeat(alice, {"status": "away"}) for _ in range(3)]

    assert [answer.status_code for answer in answers[:2]] == [204, 204]
    problem = assert_problem(answers[2], 429, "RGP.RATE_LIMITED")
    assert problem["details"]["retry_after_seconds"] == 100
    assert answers[2].headers["retry-after"] == "100"


async def test_concurrent_heartbeats_of_many_users_each_get_their_answer(
    api: Api, presence: Presence, pool: asyncpg.Pool
) -> None:
    users = [await api.persona(name) for name in ("alice", "bob", "carol", "dave", "erin")]
    logout = await api.post("/api/auth/logout", users[4])
    assert logout.status_code == 200
    before = fast_count()

    answers = await asyncio.gather(
        *(
            presence.heartbeat(user, {"status": "away" if n % 2 else "online"})
            for n, user in enumerate(users * 4)
        )
    )

    assert [answer.status_code for answer in answers] == [204, 204, 204, 204, 401] * 4
    assert fast_count() == before + 16
    snapshot = await presence.http.get(f"/api/conversations/{users[0].id}/presence", headers=users[0].bearer)
    assert snapshot.status_code in (403, 404)  # not a conversation: nothing leaked across users


async def test_a_body_without_a_json_type_gets_the_full_paths_415(api: Api, presence: Presence) -> None:
    alice = await api.persona("alice")
    before = fast_count()
    response = await presence.http.post("/api/presence/heartbeat", content=b"{}", headers=alice.bearer)
    assert_problem(response, 415, "unsupported_media_type")
    doubled = await presence.http.post(
        "/api/presence/heartbeat", headers=[("Authorization", "Bearer nope"), *alice.bearer.items()]
    )
    assert_problem(doubled, 401, "RGP.AUTH.INVALID_SESSION")  # the first Authorization header counts
    assert fast_count() == before


async def exchange(url: str, data: list[bytes], pause: float = 0.0) -> bytes:
    """Write ``data`` (pieces ``pause`` seconds apart) on one connection; everything read until it closes."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for piece in data:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(pause)
        async with asyncio.timeout(5):
            return await reader.read(-1)
    finally:
        writer.close()


def heartbeat_request(token: str, request_id: str, *, body: bytes = b"{}", close: bool = False) -> bytes:
    head = (
        f"POST /api/presence/heartbeat HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nX-Request-ID: {request_id}\r\n"
    )
    return (head + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


def header_values(heads: list[bytes], name: bytes) -> list[bytes]:
    """The values of header ``name`` in each raw response head, in order."""
    prefix = name + b": "
    return [line[len(prefix) :] for head in heads for line in head.split(b"\r\n") if line.startswith(prefix)]


async def test_pipelined_heartbeats_are_answered_in_order_on_one_connection(
    api: Api, presence: Presence
) -> None:
    alice = await api.persona("alice")
    before = fast_count()
    requests = [heartbeat_request(alice.token, f"hb-{n}", close=n == 4) for n in range(5)]

    raw = await exchange(presence.url, [b"".join(requests)])

    heads = [part for part in raw.split(b"\r\n\r\n") if part]
    assert [head.split(b"\r\n")[0] for head in heads] == [b"HTTP/1.1 204 No Content"] * 5
    assert header_values(heads, b"x-request-id") == [f"hb-{n}".encode() for n in range(5)]
    assert b"connection: close" in heads[4] and all(b"connection: close" not in h for h in heads[:4])
    assert fast_count() == before + 5
    remaining = [
        int(line.split(b": ")[1])
        for head in heads
        for line in head.split(b"\r\n")
        if line.startswith(b"ratelimit-remaining")
    ]
    assert remaining == [99, 98, 97, 96, 95], "one charge each"


async def test_a_body_that_comes_after_its_head_is_still_answered_once(api: Api, presence: Presence) -> None:
    alice = await api.persona("alice")
    before = fast_count()
    request = heartbeat_request(alice.token, "split", body=b'{"status":"away"}', close=True)
    head, body = request.split(b"\r\n\r\n")

    raw = await exchange(presence.url, [head + b"\r\n\r\n", body], pause=0.05)

    assert raw.startswith(b"HTTP/1.1 204 No Content\r\n") and raw.count(b"HTTP/1.1") == 1
    assert fast_count() == before + 1  # the ASGI lean path took what the protocol could not
