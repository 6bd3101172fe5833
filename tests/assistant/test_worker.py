"""The assistant process in-process (its app and lifespan over a real socket) on the test database, with the
api in-process too: replies from the openai provider against a local OpenAI-compatible server, its failure
paths as the worker finishes them, crash recovery of a lapsed lease, and the operational endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from tests.assistant.fake_openai import Behaviour, FakeOpenAI
from tests.support.api import Api, Persona
from tests.support.conversations import create_conversation
from tests.support.http import serve_app
from tests.support.messages import events_after, post_root
from threadline_api.assistant.app import AssistantSettings, create_app
from threadline_shared.ids import path_label, uuid7

KEY = "sk-worker-test-key"
StartWorker = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    server = FakeOpenAI()
    async with serve_app(server.app()) as url:
        try:
            yield server, url + "/v1"
        finally:
            server.release.set()


@pytest.fixture
def start_worker(database_url: str, upstream: tuple[FakeOpenAI, str]) -> StartWorker:
    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[str]:
        fields: dict[str, Any] = {
            "env": "test",
            "database_url": database_url,
            "assistant_provider": "openai",
            "openai_base_url": upstream[1],
            "openai_api_key": KEY,
            **overrides,
        }
        settings = AssistantSettings.load(**fields)
        assert isinstance(settings, AssistantSettings)
        async with serve_app(create_app(settings)) as url:
            yield url

    return start


async def wait_done(pool: asyncpg.Pool, trigger_id: str, timeout: float = 10) -> asyncpg.Record:
    """The finished job of a triggering message, joined with its assistant message."""
    async with asyncio.timeout(timeout):
        while True:
            row = await pool.fetchrow(
                """
                SELECT j.status AS job_status, j.finish_reason AS job_finish_reason, m.*
                FROM assistant_jobs j JOIN messages m ON m.id = j.assistant_message_id
                WHERE j.trigger_message_id = $1 AND j.status = 'done'
                """,
                UUID(trigger_id),
            )
            if row is not None:
                return row
            await asyncio.sleep(0.05)


async def chat(api: Api) -> tuple[Persona, str]:
    alice = await api.persona("alice")
    return alice, await create_conversation(api, alice)


def types_after(events: list[dict[str, Any]], message_id: UUID) -> list[str]:
    """Event types from the assistant message's creation on."""
    start = next(
        n
        for n, e in enumerate(events)
        if e["type"] == "message.created" and e["envelope"]["payload"]["id"] == str(message_id)
    )
    return [e["type"] for e in events[start:]]


async def test_an_openai_reply_is_streamed_into_chunks_and_events(
    api: Api, pool: asyncpg.Pool, start_worker: StartWorker, upstream: tuple[FakeOpenAI, str]
) -> None:
    server, _ = upstream
    server.behaviour = Behaviour(usage={"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14})
    alice, conversation = await chat(api)
    async with start_worker():
        trigger = await post_root(api, alice, conversation, "Say hello")
        reply = await wait_done(pool, trigger)

    assert (reply["content"], reply["status"], reply["finish_reason"]) == ("Hello there", "complete", "stop")
    assert reply["role"] == "assistant" and reply["author_user_id"] is None
    assert reply["parent_id"] == UUID(trigger) and reply["depth"] == 2
    chunks = await pool.fetch(
        "SELECT idx, content FROM message_chunks WHERE message_id = $1 ORDER BY idx", reply["id"]
    )
    assert "".join(chunk["content"] for chunk in chunks) == "Hello there"
    assert [chunk["idx"] for chunk in chunks] == list(range(len(chunks)))
    events = await events_after(pool, conversation)
    deltas = ["message.delta"] * len(chunks)
    assert types_after(events, reply["id"]) == [
        "message.created", "unread.update", *deltas, "message.done", "message.updated", "thread.activity",
    ]  # fmt: skip
    done = next(e for e in events if e["type"] == "message.done")["envelope"]["payload"]
    assert done["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    assert server.requests[0].body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        (Behaviour(mode="status", status=500), "provider answered HTTP 500 Internal Server Error"),
        (Behaviour(mode="break"), "provider stream broken"),
    ],
)
async def test_openai_failures_end_the_reply_as_an_error(
    api: Api,
    pool: asyncpg.Pool,
    start_worker: StartWorker,
    upstream: tuple[FakeOpenAI, str],
    behaviour: Behaviour,
    error: str,
) -> None:
    upstream[0].behaviour = behaviour
    alice, conversation = await chat(api)
    async with start_worker():
        trigger = await post_root(api, alice, conversation, "Say hello")
        reply = await wait_done(pool, trigger)

    streamed = "Hel" if behaviour.mode == "break" else ""
    suffix = f"⚠️ Assistant stream error: {error}"
    assert reply["content"] == (f"{streamed}\n\n{suffix}" if streamed else suffix)
    assert (reply["status"], reply["finish_reason"]) == ("failed", "error")
    events = await events_after(pool, conversation)
    (failure,) = [e["envelope"]["payload"] for e in events if e["type"] == "error"]
    assert failure == {
        "code": "assistant_stream_error",
        "message": f"Assistant stream error: {error}",
        "message_id": str(reply["id"]),
    }
    assert KEY not in str(events)


async def test_an_unreachable_provider_fails_the_reply_at_once(
    api: Api, pool: asyncpg.Pool, start_worker: StartWorker
) -> None:
    alice, conversation = await chat(api)
    async with start_worker(openai_base_url="http://127.0.0.1:9/v1"):
        trigger = await post_root(api, alice, conversation, "anyone there?")
        reply = await wait_done(pool, trigger)
    assert reply["content"] == "⚠️ Assistant stream error: cannot connect to the provider"
    assert reply["finish_reason"] == "error"


async def test_a_stalled_openai_stream_times_out(
    api: Api, pool: asyncpg.Pool, start_worker: StartWorker, upstream: tuple[FakeOpenAI, str]
) -> None:
    upstream[0].behaviour = Behaviour(mode="stall")
    alice, conversation = await chat(api)
    async with start_worker(assistant_timeout_seconds=1):
        trigger = await post_root(api, alice, conversation, "take your time")
        reply = await wait_done(pool, trigger)
    assert reply["content"] == "Hello there\n\n⚠️ Assistant generation timed out before completion."
    assert (reply["status"], reply["finish_reason"]) == ("failed", "timeout")
    events = await events_after(pool, conversation)
    assert [e["envelope"]["payload"]["code"] for e in events if e["type"] == "error"] == ["assistant_timeout"]


async def test_a_running_job_whose_lease_lapsed_is_finished_as_worker_lost(
    api: Api, pool: asyncpg.Pool, start_worker: StartWorker
) -> None:
    alice, conversation = await chat(api)
    trigger = await post_root(api, alice, conversation, "one two three")
    # What a worker that died mid-stream leaves behind: a streaming reply with one chunk, a lapsed lease.
    reply_id = uuid7()
    trigger_row = await pool.fetchrow("SELECT path::text AS path FROM messages WHERE id = $1", UUID(trigger))
    assert trigger_row is not None
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            INSERT INTO messages (id, conversation_id, root_id, parent_id, role, content, path, depth, status)
            VALUES ($1, $2, $3, $3, 'assistant', 'Partial', $4::ltree, 2, 'streaming')
            """,
            reply_id, UUID(conversation), UUID(trigger), f"{trigger_row['path']}.{path_label(reply_id)}",
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO message_chunks (message_id, idx, content) VALUES ($1, 0, 'Partial')", reply_id
        )
        await conn.execute(  # written past the api: void the thread's cached unread counts (migration 0002)
            "UPDATE threads SET unread_version = unread_version + 1 WHERE root_id = $1", UUID(trigger)
        )
        await conn.execute(
            """
            UPDATE assistant_jobs SET status = 'running', assistant_message_id = $2, worker_id = 'dead',
                   started_at = now(), lease_expires_at = now() - interval '1 second'
            WHERE trigger_message_id = $1
            """,
            UUID(trigger), reply_id,
        )  # fmt: skip
    seq = await pool.fetchval("SELECT last_seq FROM conversations WHERE id = $1", UUID(conversation))

    async with start_worker():
        reply = await wait_done(pool, trigger)

    assert reply["id"] == reply_id, "generation is never restarted"
    assert reply["content"] == "Partial\n\n⚠️ Assistant stream error: worker lost"
    events = await events_after(pool, conversation, seq)
    assert [e["type"] for e in events] == ["message.done", "error", "message.updated", "thread.activity"]
    done = events[0]["envelope"]["payload"]
    assert done["finish_reason"] == "error"
    # prompt: "User: one two three" + "Assistant:" = 5 words; completion: "Partial" = 1 word
    assert done["usage"] == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    assert events[1]["envelope"]["payload"]["message"] == "Assistant stream error: worker lost"
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE parent_id = $1", UUID(trigger)) == 1


async def test_the_process_serves_only_the_operational_endpoints(api: Api, start_worker: StartWorker) -> None:
    async with start_worker() as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"ready": True}
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert "threadline_assistant_jobs_total" in metrics.text
        assert (await client.get("/openapi.json")).status_code == 404


async def running_reply(pool: asyncpg.Pool, trigger_id: str) -> UUID:
    """The assistant message of a job once it has streamed its first chunk."""
    async with asyncio.timeout(10):
        while True:
            message_id = await pool.fetchval(
                """
                SELECT j.assistant_message_id FROM assistant_jobs j
                WHERE j.trigger_message_id = $1 AND j.status = 'running'
                  AND EXISTS (SELECT 1 FROM message_chunks c WHERE c.message_id = j.assistant_message_id)
                """,
                UUID(trigger_id),
            )
            if message_id is not None:
                return UUID(str(message_id))
            await asyncio.sleep(0.05)


async def test_a_cancel_flag_is_seen_by_polling_without_a_notification(
    api: Api, pool: asyncpg.Pool, start_worker: StartWorker, upstream: tuple[FakeOpenAI, str]
) -> None:
    upstream[0].behaviour = Behaviour(mode="stall")
    alice, conversation = await chat(api)
    async with start_worker(assistant_timeout_seconds=0):
        trigger = await post_root(api, alice, conversation, "go on")
        message_id = await running_reply(pool, trigger)
        await pool.execute(
            "UPDATE assistant_jobs SET cancel_requested = true WHERE assistant_message_id = $1", message_id
        )  # no NOTIFY tl_cancel: only the 500 ms poll can see it
        async with asyncio.timeout(1.5):
            reply = await wait_done(pool, trigger)
    assert (reply["content"], reply["status"], reply["finish_reason"]) == (
        "Hello there",
        "cancelled",
        "cancelled",
    )


async def test_a_worker_that_stops_ends_its_running_replies_as_errors(
    api: Api, pool: asyncpg.Pool, start_worker: StartWorker, upstream: tuple[FakeOpenAI, str]
) -> None:
    upstream[0].behaviour = Behaviour(mode="stall")
    alice, conversation = await chat(api)
    async with start_worker(assistant_timeout_seconds=0):
        trigger = await post_root(api, alice, conversation, "go on")
        await running_reply(pool, trigger)
    reply = await wait_done(pool, trigger, timeout=1)
    assert reply["content"] == "Hello there\n\n⚠️ Assistant stream error: worker stopped"
    assert (reply["status"], reply["finish_reason"]) == ("failed", "error")
