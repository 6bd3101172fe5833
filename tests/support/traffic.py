"""Load for the stream's resilience tests: writers that keep durable events flowing over the api (retrying
through outages), a reader that follows a conversation like a browser (resuming with ``Last-Event-ID``), and
the ids a user must see, computed from the event log itself."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import Api, Persona
from tests.support.sse import open_stream
from threadline_shared.dto.events import MessageUpdatedEvent
from threadline_shared.eventlog import LogEntry, append_events

RETRY_PAUSE_SECONDS = 0.1


async def post_retrying(
    api: Api, user: Persona, path: str, body: dict[str, Any], *, within: float = 30.0
) -> httpx.Response:
    """POST until it succeeds; 5xx and connection errors (a database or process outage) are retried.

    A retried post may have committed before its response was lost: the tests count events from the log,
    never from the number of posts."""
    deadline = time.monotonic() + within
    while True:
        try:
            response = await api.post(path, user, json=body)
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code < 500:
            assert response.status_code in (201, 204), response.text
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"POST {path} kept failing for {within:.0f}s: {response and response.text}")
        await asyncio.sleep(RETRY_PAUSE_SECONDS)


@dataclass
class Posted:
    """A reply the api confirmed, and when its response arrived (``time.monotonic()``)."""

    message_id: str
    at: float


async def post_replies(
    api: Api,
    authors: Sequence[Persona],
    root_id: str,
    count: int,
    *,
    pause: float = 0.0,
    gate: Callable[[int], Awaitable[None]] | None = None,
    until: asyncio.Event | None = None,
) -> list[Posted]:
    """``count`` replies to ``root_id`` (fewer if ``until`` is set first), the authors posting concurrently
    (one request in flight each). ``gate(n)``, if given, is awaited before reply ``n`` (to pace them)."""
    posted: list[Posted] = []
    remaining = iter(range(count))

    async def author_loop(author: Persona) -> None:
        for n in remaining:
            if until is not None and until.is_set():
                return
            if gate is not None:
                await gate(n)
            response = await post_retrying(
                api, author, f"/api/messages/{root_id}/reply", {"content": f"reply {n}"}
            )
            posted.append(Posted(response.json()["message_id"], time.monotonic()))
            if pause:
                await asyncio.sleep(pause)

    async with asyncio.TaskGroup() as tasks:
        for author in authors:
            tasks.create_task(author_loop(author))
    return posted


async def append_edits(
    pool: asyncpg.Pool, conversation_id: str, message_id: str, count: int, *, audience: Persona | None = None
) -> list[int]:
    """``count`` durable ``message.updated`` events for a message the api created, each with 16,000
    characters of content, in one transaction through the shared event-log writer: a burst of large events
    faster than the api could write them. Audience all, or only ``audience``. Their sequence numbers."""
    envelope = await pool.fetchval(
        "SELECT envelope FROM event_log WHERE conversation_id = $1 AND type = 'message.created' "
        "AND envelope::jsonb -> 'payload' ->> 'id' = $2",
        UUID(conversation_id),
        message_id,
    )
    payload = {**orjson.loads(envelope)["payload"], "content": "edited " * 2000 + "!" * 2000}
    payload["edited_at"] = datetime.now(UTC).isoformat()
    event = MessageUpdatedEvent.model_validate({"type": "message.updated", "payload": payload})
    async with pool.acquire() as conn, conn.transaction():
        entry = LogEntry(event, audience.id if audience else None)
        return await append_events(conn, UUID(conversation_id), [entry] * count)


async def metric(base_url: str, name: str, **labels: str) -> float:
    """One sample of a process's /metrics (0 when it has not been recorded yet)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]], *, timeout: float, every: float = 0.05
) -> None:
    """Poll ``check`` (outside state: a process, a socket, an endpoint) until it holds."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(every)


async def visible_seqs(pool: asyncpg.Pool, conversation_id: str, user: Persona, after: int) -> list[int]:
    """The sequence numbers after ``after`` that ``user`` must receive: audience all or the user."""
    rows = await pool.fetch(
        """
        SELECT seq FROM event_log
        WHERE conversation_id = $1 AND seq > $2 AND (audience_user_id IS NULL OR audience_user_id = $3)
        ORDER BY seq
        """,
        UUID(conversation_id),
        after,
        user.id,
    )
    return [row["seq"] for row in rows]


async def last_seq(pool: asyncpg.Pool, conversation_id: str) -> int:
    seq: int = await pool.fetchval("SELECT last_seq FROM conversations WHERE id = $1", UUID(conversation_id))
    return seq


@dataclass
class Follower:
    """Follows one conversation's stream from ``last_event_id``, recording every durable id it receives;
    when the stream ends or breaks it reconnects with ``Last-Event-ID``, as a browser does."""

    base_url: str
    conversation_id: str
    user: Persona
    last_event_id: int
    ids: list[int] = field(default_factory=list)
    received_at: dict[str, float] = field(default_factory=dict)  # message.created id -> time.monotonic()
    connections: int = 0
    _progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(EOFError, httpx.HTTPError, OSError):
                async with open_stream(
                    self.base_url, self.conversation_id, self.user.token, last_event_id=self.last_event_id
                ) as stream:
                    if stream.response.status_code == 200:
                        self.connections += 1
                        self._progress.set()
                        while True:
                            event = await stream.next(timeout=60)
                            if event.id is not None:
                                self.ids.append(event.id)
                                self.last_event_id = event.id
                                self._progress.set()
                            if event.event == "message.created":
                                self.received_at[event.payload["id"]] = time.monotonic()
            await asyncio.sleep(RETRY_PAUSE_SECONDS)

    async def _until(self, done: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._progress.clear()
                await self._progress.wait()

    async def wait_for(self, seq: int, timeout: float) -> None:
        """Until the id ``seq`` (or a later one) arrived."""
        await self._until(lambda: bool(self.ids) and self.ids[-1] >= seq, timeout)

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await self._until(lambda: self.connections > 0, timeout)


@contextlib.asynccontextmanager
async def following(
    base_url: str, conversation_id: str, user: Persona, last_event_id: int
) -> AsyncIterator[Follower]:
    follower = Follower(base_url, conversation_id, user, last_event_id)
    task = asyncio.create_task(follower.run())
    try:
        await follower.wait_connected()
        yield follower
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
