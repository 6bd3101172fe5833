"""Live delivery over real sockets (contract 6.1-6.3, 6.5, 6.7, 6.8): wire format, ordering, audience,
access errors, keepalives, snapshot, membership removal."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.api import Api, Persona
from tests.support.conversations import add_participant, create_conversation, remove_participant
from tests.support.problems import assert_problem
from tests.support.sse import SseEvent, open_stream
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


async def two_members(api: Api) -> tuple[Persona, Persona, str]:
    alice = await api.persona("alice")
    bob = await api.persona("bob")
    conversation = await create_conversation(api, alice, is_group=True)
    await add_participant(api, alice, conversation, bob)
    return alice, bob, conversation


def types(events: list[SseEvent]) -> list[str]:
    return [event.event for event in events]


async def test_the_stream_starts_with_retry_and_the_contract_headers(stack: Stack, api: Api) -> None:
    alice, _, conversation = await two_members(api)
    async with open_stream(stack.url("streamer"), conversation, alice.token) as stream:
        first = await stream.response.aiter_raw().__anext__()
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.response.headers["cache-control"] == "no-cache"
        assert stream.response.headers["x-accel-buffering"] == "no"
        assert stream.response.headers["x-request-id"]
        assert first.startswith(b"retry: 3000\n\n")


async def test_two_members_see_every_event_of_a_post_in_order(stack: Stack, api: Api) -> None:
    alice, bob, conversation = await two_members(api)
    async with (
        open_stream(stack.url("streamer"), conversation, alice.token) as alice_stream,
        open_stream(stack.url("streamer"), conversation, bob.token) as bob_stream,
    ):
        await alice_stream.until("presence.update")  # the snapshot: the stream is live
        await bob_stream.until("presence.update")
        root = await api.post(f"/api/threads/{conversation}/root", alice, json={"content": "hello"})
        assert root.status_code == 201
        alice_events = await alice_stream.durable(3)
        bob_events = await bob_stream.durable(4)

    assert types(alice_events) == ["thread.new", "message.created", "thread.activity"]
    assert types(bob_events) == ["thread.new", "message.created", "thread.activity", "unread.update"]
    ids = [event.id for event in bob_events]
    assert ids == list(range(ids[0], ids[0] + 4)), "consecutive sequence numbers"
    assert [event.id for event in alice_events] == ids[:3]
    assert bob_events[1].payload["content"] == "hello"
    assert bob_events[3].payload == {"root_id": root.json()["root_id"], "unread": 1}
    assert all(event.data["type"] == event.event for event in bob_events)


async def test_a_non_member_is_refused_before_the_stream_starts(stack: Stack, api: Api) -> None:
    alice, _, conversation = await two_members(api)
    carol = await api.persona("carol")
    async with httpx.AsyncClient(base_url=stack.url("streamer")) as client:
        forbidden = await client.get(f"/api/stream/conversations/{conversation}", headers=carol.bearer)
        anonymous = await client.get(f"/api/stream/conversations/{conversation}")
        bad_cursor = await client.get(
            f"/api/stream/conversations/{conversation}", headers={**alice.bearer, "Last-Event-ID": "abc"}
        )
        bad_since = await client.get(
            f"/api/stream/conversations/{conversation}", headers=alice.bearer, params={"since": "-5"}
        )
        bad_id = await client.get("/api/stream/conversations/not-a-uuid", headers=alice.bearer)
    assert_problem(forbidden, 403, "RGP.RBAC.FORBIDDEN")
    assert_problem(anonymous, 401, "RGP.AUTH.MISSING_SESSION")
    assert (
        assert_problem(bad_cursor, 400, "invalid_request")["details"]["errors"][0]["field"] == "Last-Event-ID"
    )
    assert_problem(bad_since, 400, "invalid_request")
    assert_problem(bad_id, 400, "invalid_request")


async def test_unread_updates_reach_only_their_user(stack: Stack, api: Api) -> None:
    alice, bob, conversation = await two_members(api)
    async with open_stream(stack.url("streamer"), conversation, alice.token) as stream:
        await stream.until("presence.update")
        await api.post(f"/api/threads/{conversation}/root", bob, json={"content": "from bob"})
        await api.post(f"/api/threads/{conversation}/root", alice, json={"content": "from alice"})
        events = await stream.durable(7)
    # bob's post: thread.new, created, activity, unread for alice; alice's post: no unread for alice
    assert types(events) == [
        "thread.new", "message.created", "thread.activity", "unread.update",
        "thread.new", "message.created", "thread.activity",
    ]  # fmt: skip
    assert [event.id for event in events][:4] == list(range(events[0].id or 0, (events[0].id or 0) + 4))


async def test_the_snapshot_lists_every_participant_after_the_replay(stack: Stack, api: Api) -> None:
    alice, bob, conversation = await two_members(api)
    async with open_stream(stack.url("streamer"), conversation, alice.token, last_event_id=0) as stream:
        replayed = await stream.durable(1)
        snapshot = [await stream.next(), await stream.next()]
    assert types(replayed) == ["membership.changed"], "adding bob; creating the conversation emits nothing"
    assert replayed[0].id == 1
    assert [event.event for event in snapshot] == ["presence.update", "presence.update"]
    assert sorted(event.payload["user_id"] for event in snapshot) == sorted([str(alice.id), str(bob.id)])
    assert [event.payload["user_id"] for event in snapshot] == sorted(
        event.payload["user_id"] for event in snapshot
    )
    assert all(event.id is None and event.payload["status"] == "offline" for event in snapshot)


async def test_keepalive_comments_flow_while_idle(stack: Stack, api: Api) -> None:
    alice, _, conversation = await two_members(api)
    async with open_stream(stack.url("streamer"), conversation, alice.token) as stream:
        await stream.until("presence.update")
        await stream.until("presence.update")  # the snapshot has one per participant
        with pytest.raises(TimeoutError):  # keepalive 2 s, the sweeper's tick 1 s; margin for a loaded host
            await stream.next(timeout=6)
    assert "keepalive" in stream.comments


async def test_a_removed_member_gets_the_event_then_the_stream_ends(stack: Stack, api: Api) -> None:
    alice, bob, conversation = await two_members(api)
    async with open_stream(stack.url("streamer"), conversation, bob.token) as stream:
        await stream.until("presence.update")
        await remove_participant(api, alice, conversation, bob)
        removed = await stream.until("membership.changed")
        with pytest.raises(EOFError):
            await stream.next(timeout=5)
    assert removed.payload == {
        "conversation_id": conversation, "user_id": str(bob.id), "role": "member", "action": "removed",
    }  # fmt: skip


async def test_resume_with_last_event_id_sends_exactly_what_was_missed(stack: Stack, api: Api) -> None:
    alice, bob, conversation = await two_members(api)
    async with open_stream(stack.url("streamer"), conversation, bob.token) as stream:
        await stream.until("presence.update")
        await api.post(f"/api/threads/{conversation}/root", alice, json={"content": "one"})
        seen = await stream.durable(4)
    last = seen[-1].id
    for text in ("two", "three"):
        await api.post(f"/api/threads/{conversation}/root", alice, json={"content": text})
    async with open_stream(stack.url("streamer"), conversation, bob.token, last_event_id=last) as stream:
        missed = await stream.durable(8)
        with pytest.raises(TimeoutError):
            await stream.durable(1, timeout=0.5)
    assert [event.id for event in missed] == list(range((last or 0) + 1, (last or 0) + 9))
    assert [e.payload["content"] for e in missed if e.event == "message.created"] == ["two", "three"]


@pytest.mark.parametrize("cursor", ["999", "9" * 25])  # the second beyond any bigint
async def test_a_cursor_beyond_the_log_gets_resync_required_then_live(
    stack: Stack, api: Api, cursor: str
) -> None:
    alice, _, conversation = await two_members(api)
    async with open_stream(
        stack.url("streamer"), conversation, alice.token, params={"last_event_id": cursor}
    ) as stream:
        error = await stream.next()
        assert error.event == "error"
        assert error.id is None
        assert error.payload == {
            "code": "resync_required", "message": "event history is no longer available; refetch state",
        }  # fmt: skip
        await stream.until("presence.update")
        await api.post(f"/api/threads/{conversation}/root", alice, json={"content": "live"})
        assert (await stream.durable(1))[0].event == "thread.new"


async def test_since_replays_events_newer_than_the_time(stack: Stack, api: Api) -> None:
    alice, _, conversation = await two_members(api)
    await asyncio.sleep(0.05)
    async with open_stream(stack.url("streamer"), conversation, alice.token, params={"since": "0"}) as stream:
        replayed = await stream.durable(1)
    assert types(replayed) == ["membership.changed"]
    assert replayed[0].id == 1


async def test_presence_and_typing_reach_the_stream_without_ids(stack: Stack, api: Api) -> None:
    alice, bob, conversation = await two_members(api)
    async with (
        open_stream(stack.url("streamer"), conversation, alice.token) as stream,
        httpx.AsyncClient(base_url=stack.url("presence"), headers=bob.bearer) as presence,
    ):
        await stream.until("presence.update")
        await stream.until("presence.update")  # the snapshot: one per participant
        assert (await presence.post("/api/presence/heartbeat", json={})).status_code == 204
        online = await stream.until("presence.update")
        assert (
            await presence.post("/api/typing", json={"conversation_id": conversation, "seconds": 10})
        ).status_code == 204
        typing = await stream.until("typing.update")
        await api.post(f"/api/threads/{conversation}/root", bob, json={"content": "done typing"})
        stopped = await stream.until("typing.update")

    assert online.id is None and online.payload["user_id"] == str(bob.id)
    assert online.payload["status"] == "online"
    assert typing.id is None
    assert typing.payload["user_id"] == str(bob.id)
    assert "root_id" not in typing.payload
    assert typing.payload["expires_at"] > stopped.payload["expires_at"], "a post stops the typing at once"
