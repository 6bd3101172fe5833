"""Steps of the assistant end-to-end tests: per-message scripts, reading one reply's events off a stream,
chunk pages, cancel calls, and finished jobs in the database."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from tests.support.api import Api, Persona
from tests.support.sse import SseEvent, SseStream


def script(deltas: list[str], **fields: Any) -> str:
    """A triggering message's content that scripts its reply (contract 9.4)."""
    return json.dumps({"scripted": {"deltas": deltas, **fields}})


async def reply_events(stream: SseStream, timeout: float = 15) -> list[SseEvent]:
    """Durable events from the assistant message's ``message.created`` to the ``thread.activity`` after its
    ``message.done`` (the triggering post's own events are skipped)."""
    events: list[SseEvent] = []
    async with asyncio.timeout(timeout):
        while True:
            event = await stream.next(timeout)
            if event.id is None:
                continue
            if not events:
                if event.event == "message.created" and event.payload["role"] == "assistant":
                    events.append(event)
                continue
            events.append(event)
            if event.event == "thread.activity" and any(e.event == "message.done" for e in events):
                return events


def of_type(events: list[SseEvent], event_type: str) -> list[SseEvent]:
    return [event for event in events if event.event == event_type]


def delta_text(events: list[SseEvent]) -> str:
    return "".join(
        event.payload["choices"][0]["delta"]["content"] for event in of_type(events, "message.delta")
    )


def only(events: list[SseEvent], event_type: str) -> dict[str, Any]:
    (event,) = of_type(events, event_type)
    return event.payload


async def chunk_page(api: Api, user: Persona, message_id: str, **params: Any) -> list[dict[str, Any]]:
    response = await api.get(f"/api/messages/{message_id}/chunks", user, params=params)
    assert response.status_code == 200, response.text
    page: list[dict[str, Any]] = response.json()
    return page


async def cancel(api: Api, user: Persona, message_id: str) -> httpx.Response:
    return await api.post(f"/api/messages/{message_id}/cancel", user)


async def wait_jobs_done(pool: asyncpg.Pool, count: int, timeout: float = 20) -> list[asyncpg.Record]:
    """All jobs, once ``count`` of them are done and none is still queued or running."""
    async with asyncio.timeout(timeout):
        while True:
            rows = await pool.fetch("SELECT * FROM assistant_jobs ORDER BY created_at")
            if len(rows) >= count and all(row["status"] == "done" for row in rows):
                return rows
            await asyncio.sleep(0.1)


async def assistant_replies_to(pool: asyncpg.Pool, trigger_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM messages WHERE parent_id = $1 AND role = 'assistant' AND author_user_id IS NULL",
        UUID(trigger_id),
    )
