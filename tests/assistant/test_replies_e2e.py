"""Assistant replies end to end (contract 9, 6.5): api, streamer, presence and the assistant worker as
processes (scripted provider), driven over HTTP and read over SSE: the full event sequence, chunks, cancel
and its statuses, timeout of a stalled provider, provider errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.assistant.replies import (
    cancel,
    chunk_page,
    delta_text,
    of_type,
    only,
    reply_events,
    script,
)
from tests.support.api import Api, Persona, remote_api
from tests.support.conversations import add_participant, create_conversation
from tests.support.messages import post_root, reply
from tests.support.problems import assert_problem
from tests.support.servers import SuiteServers
from tests.support.sse import open_stream
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

TIMEOUT_SUFFIX = "⚠️ Assistant generation timed out before completion."
ENV = {
    "THREADLINE_RATE_LIMIT_ENABLED": "false",
    "THREADLINE_ASSISTANT_TIMEOUT_SECONDS": "2",
}


@pytest.fixture(scope="module")
def stack(
    database_url: str, servers: SuiteServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with running_stack(database_url, servers.redis_url, tmp_path_factory.mktemp("stack"), ENV) as started:
        yield started


@pytest.fixture
async def api(stack: Stack, pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with remote_api(stack.url("api")) as running:
        yield running


async def chat_with_bob(api: Api) -> tuple[Persona, Persona, str]:
    """A one-to-one conversation (assistant replies on by default) of alice (owner) and bob (member)."""
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversation = await create_conversation(api, alice)
    await add_participant(api, alice, conversation, bob)
    return alice, bob, conversation


async def test_a_post_streams_the_reply_from_created_to_activity_in_order(stack: Stack, api: Api) -> None:
    alice, bob, conversation = await chat_with_bob(api)
    deltas = ["Threads ", "are ", "trees ", "of ", "replies", "."]
    content = script(deltas, delay_ms=30)
    root = await post_root(api, alice, conversation, content)
    async with (
        open_stream(stack.url("streamer"), conversation, alice.token, last_event_id=0) as alice_stream,
        open_stream(stack.url("streamer"), conversation, bob.token, last_event_id=0) as bob_stream,
    ):
        events = await reply_events(alice_stream)
        bob_events = await reply_events(bob_stream)

    kinds = [event.event for event in events]
    n_deltas = kinds.count("message.delta")
    assert n_deltas >= 2
    assert kinds == [
        "message.created", "unread.update", *["message.delta"] * n_deltas,
        "message.done", "message.updated", "thread.activity",
    ]  # fmt: skip
    seqs = [event.id or 0 for event in events]
    assert seqs == sorted(set(seqs)) and seqs[0] > 0, "increasing sequence ids"

    created = events[0].payload
    assert created["status"] == "streaming" and created["content"] == ""
    assert created["role"] == "assistant" and "author_user_id" not in created
    assert created["parent_id"] == root and created["root_id"] == root and created["depth"] == 2
    message_id = created["id"]
    assert only(events, "unread.update") == {"root_id": root, "unread": 1}
    assert [e.payload["unread"] for e in of_type(bob_events, "unread.update")] == [2], "bob: root + reply"

    chunks = [event.payload for event in of_type(events, "message.delta")]
    assert [chunk["idx"] for chunk in chunks] == list(range(n_deltas))
    for chunk in chunks:
        assert chunk["id"] == f"{message_id}:{chunk['idx']}"
        assert chunk["object"] == "chat.completion.chunk"
        assert (chunk["message_id"], chunk["root_id"], chunk["parent_id"]) == (message_id, root, root)
        assert (chunk["conversation_id"], chunk["depth"]) == (conversation, 2)
        assert ("role" in chunk["choices"][0]["delta"]) is (chunk["idx"] == 0)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"

    text = "".join(deltas)
    assert delta_text(events) == text
    done = only(events, "message.done")
    prompt_words = len(f"User: {content}".split()) + 1  # the flattened prompt ends with "Assistant:"
    assert done == {
        "message_id": message_id,
        "root_id": root,
        "conversation_id": conversation,
        "finish_reason": "stop",
        "usage": {"prompt_tokens": prompt_words, "completion_tokens": 5, "total_tokens": prompt_words + 5},
    }
    updated = only(events, "message.updated")
    assert (updated["id"], updated["content"], updated["status"]) == (message_id, text, "complete")
    activity = only(events, "thread.activity")
    assert activity == {"root_id": root, "last_activity_at": updated["created_at"]}
    stored = await chunk_page(api, bob, message_id)
    assert "".join(chunk["content"] for chunk in stored) == text
    assert [chunk["content"] for chunk in stored] == [c["choices"][0]["delta"]["content"] for c in chunks]


async def test_chunks_page_by_from_and_limit(stack: Stack, api: Api) -> None:
    alice, bob, conversation = await chat_with_bob(api)
    root = await post_root(api, alice, conversation, script([f"part{n} " for n in range(5)], delay_ms=80))
    async with open_stream(stack.url("streamer"), conversation, alice.token, last_event_id=0) as stream:
        events = await reply_events(stream)
    message_id = events[0].payload["id"]
    count = len(of_type(events, "message.delta"))
    assert count >= 3

    everything = await chunk_page(api, bob, message_id)
    assert [chunk["idx"] for chunk in everything] == list(range(count))
    assert all(
        chunk["message_id"] == message_id and chunk["created_at"].endswith("Z") for chunk in everything
    )
    first = await chunk_page(api, bob, message_id, limit=2)
    second = await chunk_page(api, bob, message_id, **{"from": 2, "limit": 2})
    rest = await chunk_page(api, bob, message_id, **{"from": 4})
    assert first + second + rest == everything
    assert await chunk_page(api, bob, message_id, **{"from": count}) == []
    assert await chunk_page(api, bob, root) == [], "only assistant messages have chunks"


async def test_a_cancel_mid_stream_ends_the_reply_as_cancelled(stack: Stack, api: Api) -> None:
    alice, bob, conversation = await chat_with_bob(api)
    await post_root(api, alice, conversation, script([f"w{n} " for n in range(20)], delay_ms=200))
    async with open_stream(stack.url("streamer"), conversation, alice.token, last_event_id=0) as stream:
        created = await stream.until("message.created")
        while created.payload["role"] != "assistant":
            created = await stream.until("message.created")
        message_id = created.payload["id"]
        await stream.until("message.delta")
        loop = asyncio.get_running_loop()
        asked_at = loop.time()
        response = await cancel(api, bob, message_id)
        assert response.status_code == 202
        assert response.json() == {"message_id": message_id, "status": "cancelled"}
        rest = await stream.durable(1)
        while rest[-1].event != "message.done":
            rest += await stream.durable(1)
        stopped_after = loop.time() - asked_at
        rest += await stream.durable(2)

    assert stopped_after < 1.0, "the worker stops within 1 s"
    kinds = [event.event for event in rest]
    assert kinds[-3:] == ["message.done", "message.updated", "thread.activity"]
    assert set(kinds[:-3]) <= {"message.delta"} and len(kinds) - 3 <= 1, (
        "at most the buffered text after cancel"
    )
    assert only(rest, "message.done")["finish_reason"] == "cancelled"
    updated = only(rest, "message.updated")
    assert updated["status"] == "cancelled"
    stored = "".join(chunk["content"] for chunk in await chunk_page(api, alice, message_id))
    assert updated["content"] == stored and 0 < stored.count("w") < 20

    again = await cancel(api, alice, message_id)
    assert (again.status_code, again.json()["status"]) == (202, "cancelled")


async def test_a_stalled_provider_times_out_and_cancel_then_answers_timed_out(stack: Stack, api: Api) -> None:
    alice, _, conversation = await chat_with_bob(api)
    await post_root(api, alice, conversation, script(["Half ", "an ", "answer"], stall_after=2))
    async with open_stream(stack.url("streamer"), conversation, alice.token, last_event_id=0) as stream:
        events = await reply_events(stream)

    assert [e.event for e in events][-4:] == ["message.done", "error", "message.updated", "thread.activity"]
    assert delta_text(events) == "Half an "
    message_id = events[0].payload["id"]
    assert only(events, "message.done")["finish_reason"] == "timeout"
    assert only(events, "error") == {
        "code": "assistant_timeout",
        "message": "Assistant generation timed out before completion.",
        "message_id": message_id,
    }
    updated = only(events, "message.updated")
    assert (updated["content"], updated["status"]) == (f"Half an \n\n{TIMEOUT_SUFFIX}", "failed")
    assert "".join(c["content"] for c in await chunk_page(api, alice, message_id)) == "Half an "
    response = await cancel(api, alice, message_id)
    assert (response.status_code, response.json()["status"]) == (202, "timed_out")


async def test_a_provider_error_ends_the_reply_with_the_error_and_its_text(stack: Stack, api: Api) -> None:
    alice, _, conversation = await chat_with_bob(api)
    await post_root(api, alice, conversation, script(["Some ", "text ", "lost"], error_after=2))
    async with open_stream(stack.url("streamer"), conversation, alice.token, last_event_id=0) as stream:
        events = await reply_events(stream)

    message_id = events[0].payload["id"]
    assert [e.event for e in events][-4:] == ["message.done", "error", "message.updated", "thread.activity"]
    assert only(events, "message.done")["finish_reason"] == "error"
    assert only(events, "error") == {
        "code": "assistant_stream_error",
        "message": "Assistant stream error: scripted error",
        "message_id": message_id,
    }
    updated = only(events, "message.updated")
    assert (updated["content"], updated["status"]) == (
        "Some text \n\n⚠️ Assistant stream error: scripted error",
        "failed",
    )
    response = await cancel(api, alice, message_id)
    assert (response.status_code, response.json()["status"]) == (202, "completed")


async def test_cancel_of_a_completed_reply_answers_completed(stack: Stack, api: Api) -> None:
    alice, _, conversation = await chat_with_bob(api)
    await post_root(api, alice, conversation, "hello")
    async with open_stream(stack.url("streamer"), conversation, alice.token, last_event_id=0) as stream:
        events = await reply_events(stream)
    assert only(events, "message.updated")["content"] == "Hello world"  # THREADLINE_SCRIPTED_DELTAS default
    response = await cancel(api, alice, events[0].payload["id"])
    assert response.json() == {"message_id": events[0].payload["id"], "status": "completed"}


async def test_cancel_of_an_assistant_message_posted_by_a_user_is_not_tracked(api: Api) -> None:
    alice, _, conversation = await chat_with_bob(api)
    root = await post_root(api, alice, conversation, "no reply for assistant-role posts", role="assistant")
    response = await cancel(api, alice, root)
    assert (response.status_code, response.json()) == (202, {"message_id": root, "status": "not_tracked"})


async def test_cancel_checks_existence_membership_role_then_message_role(stack: Stack, api: Api) -> None:
    alice, bob, conversation = await chat_with_bob(api)
    carol, dave = await api.persona("carol"), await api.persona("dave")
    await add_participant(api, alice, conversation, carol, "viewer")
    root = await post_root(api, alice, conversation, "hello")
    async with open_stream(stack.url("streamer"), conversation, alice.token, last_event_id=0) as stream:
        assistant_id = (await reply_events(stream))[0].payload["id"]
    user_reply = await reply(api, bob, root, "a user reply", role="system")

    assert_problem(await cancel(api, alice, "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"), 404, "RGP.NOT_FOUND")
    assert_problem(await cancel(api, dave, assistant_id), 403, "RGP.RBAC.FORBIDDEN")
    assert_problem(await cancel(api, carol, assistant_id), 403, "RGP.RBAC.FORBIDDEN")
    assert_problem(await cancel(api, dave, root), 403, "RGP.RBAC.FORBIDDEN")
    assert_problem(await cancel(api, alice, root), 400, "RGP.V1.CANCEL_ROLE")
    assert_problem(await cancel(api, bob, user_reply), 400, "RGP.V1.CANCEL_ROLE")
    assert_problem(await cancel(api, alice, "not-a-uuid"), 400, "invalid_request")
    assert (await cancel(api, bob, assistant_id)).status_code == 202, "members may cancel"
