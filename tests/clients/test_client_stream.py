"""``ThreadlineClient.stream`` against the real stack through the edge: it resumes by itself across drops
(a TCP proxy cuts it at random moments) with nothing lost and nothing twice, passes ephemeral events and
assistant deltas through, and ends with a typed error when it must (logout elsewhere, not a participant,
history gone) instead of retrying."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from tests.clients.conftest import ClientFor, lift_posting_limit
from tests.support.api import Api
from tests.support.conversations import add_participant, create_conversation
from tests.support.drop_proxy import drop_proxy
from tests.support.messages import post_root
from tests.support.stack import Stack
from tests.support.traffic import last_seq, post_replies, visible_seqs
from threadline_client import (
    EventStream,
    Forbidden,
    ReceivedEvent,
    ResyncRequired,
    StreamState,
    StreamStatus,
    ThreadlineClient,
    Unauthorized,
)
from threadline_shared.dto import (
    CancelStatus,
    EventType,
    FinishReason,
    MessageCreatedEvent,
    MessageDeltaEvent,
    MessageDoneEvent,
    MessageRole,
    TypingUpdateEvent,
)

pytestmark = pytest.mark.e2e

EVENTS = 2000
DROPS = 200
MEMBERS = ("alice", "bob", "carol", "dave", "frank", "grace", "heidi", "ivan")
SEED = 20250308


async def collect_until(stream_items: list[ReceivedEvent], done: asyncio.Event, seq: int) -> None:
    """Wait until a durable event numbered ``seq`` or later was received."""
    while not (durable := [i.seq for i in stream_items if i.seq is not None]) or durable[-1] < seq:
        done.clear()
        await done.wait()


@pytest.mark.timeout(240)  # setup included: the first test of a worker starts its stack
async def test_200_random_drops_while_2000_events_are_written_lose_and_repeat_nothing(
    stack: Stack, api: Api, pool: asyncpg.Pool, client_for: ClientFor
) -> None:
    members = [await api.persona(name) for name in MEMBERS]
    alice, bob = members[0], members[1]
    await lift_posting_limit(client_for(alice))
    conversation = await create_conversation(api, alice, is_group=True, assistant_replies=False)
    for member in members[1:]:
        await add_participant(api, alice, conversation, member)
    root = await post_root(api, alice, conversation, "the busy thread")
    start = await last_seq(pool, conversation)
    # A reply writes message.created, thread.activity and one unread.update per other participant, of which
    # bob sees only his own: bob's ids have gaps, and the log says which ids are his.
    replies = EVENTS // len(MEMBERS) + 1
    rng = random.Random(SEED)
    received: list[ReceivedEvent] = []
    progress = asyncio.Event()
    cuts_during_writes = 0
    writing = True

    async with drop_proxy(stack.edge_url) as proxy, ThreadlineClient(proxy.url, token=bob.token) as client:
        stream = client.stream(conversation, last_event_id=start, rng=random.Random(SEED))

        async def read() -> None:
            async for item in stream:
                received.append(item)
                progress.set()

        async def cut_at_random_moments() -> None:
            nonlocal cuts_during_writes
            while proxy.cuts < DROPS:
                await asyncio.wait_for(proxy.stream_opened.wait(), 10)
                await asyncio.sleep(rng.uniform(0, 0.02))
                if proxy.cut_streams() and writing:
                    cuts_during_writes += 1

        async def in_step_with_the_drops(n: int) -> None:
            """Reply ``n`` waits for its share of the drops, so that the drops are spread over the writes."""
            while proxy.cuts < n * DROPS // replies - 10:
                await asyncio.sleep(0.01)

        async def write() -> None:
            nonlocal writing
            await post_replies(api, members[:4], root, replies, gate=in_step_with_the_drops)
            writing = False

        reader = asyncio.create_task(read())
        try:
            async with asyncio.timeout(180), asyncio.TaskGroup() as tasks:
                tasks.create_task(write())
                tasks.create_task(cut_at_random_moments())
            expected = await visible_seqs(pool, conversation, bob, start)
            async with asyncio.timeout(20):
                await collect_until(received, progress, expected[-1])
                # The last drops may come after the last event: the client resumes from them too.
                while stream.connections <= proxy.cuts:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # a duplicate would arrive now
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await stream.aclose()

    assert await last_seq(pool, conversation) - start >= EVENTS
    assert [i.seq for i in received if i.durable] == expected, "every durable event once, in order, no gap"
    assert proxy.cuts >= DROPS and stream.connections > DROPS
    assert cuts_during_writes >= DROPS * 3 // 4, f"only {cuts_during_writes} drops overlapped the writes"
    assert {i.type for i in received if not i.durable} == {EventType.PRESENCE_UPDATE}  # each snapshot


async def test_a_drop_before_the_first_durable_event_resumes_from_when_the_stream_was_opened(
    stack: Stack, api: Api, pool: asyncpg.Pool
) -> None:
    alice = await api.persona("alice")
    conversation = await create_conversation(api, alice, is_group=True)
    async with drop_proxy(stack.edge_url) as proxy, ThreadlineClient(proxy.url, token=alice.token) as client:
        stream = client.stream(conversation)  # live only: no cursor yet
        assert (await anext(stream)).type is EventType.PRESENCE_UPDATE
        proxy.refusing = True
        proxy.cut_streams()
        root = await post_root(api, alice, conversation, "written while the stream was down")
        proxy.refusing = False
        async with asyncio.timeout(10):
            durable = await first_durable(stream, 3)
        await stream.aclose()

    assert [item.type for item in durable] == [
        EventType.THREAD_NEW,
        EventType.MESSAGE_CREATED,
        EventType.THREAD_ACTIVITY,
    ]
    assert isinstance(durable[1].event, MessageCreatedEvent) and str(durable[1].event.payload.id) == root
    assert [item.seq for item in durable] == await visible_seqs(pool, conversation, alice, 0)


async def first_durable(stream: EventStream, count: int) -> list[ReceivedEvent]:
    found: list[ReceivedEvent] = []
    async for item in stream:
        if item.durable:
            found.append(item)
            if len(found) == count:
                break
    return found


async def test_typing_passes_through_and_the_assistant_answer_streams_as_deltas(
    api: Api, client_for: ClientFor
) -> None:
    alice_p = await api.persona("alice")
    alice = client_for(alice_p)
    conversation = (await alice.create_conversation("Ask")).conversation_id  # assistant replies: on
    seen: list[ReceivedEvent] = []
    posted = False
    async with alice.stream(conversation) as stream:
        async for item in stream:
            seen.append(item)
            if len(seen) == 1:  # the snapshot: the stream is open
                await alice.typing(conversation, 5)
            elif isinstance(item.event, TypingUpdateEvent) and not posted:
                await alice.post_root(conversation, "one two three four five")
                posted = True
            if isinstance(item.event, MessageDoneEvent):
                break

    typing = [i for i in seen if isinstance(i.event, TypingUpdateEvent)]
    assert typing and all(i.seq is None for i in typing)
    created = [i.event.payload for i in seen if isinstance(i.event, MessageCreatedEvent)]
    assert [m.role for m in created] == [MessageRole.USER, MessageRole.ASSISTANT]
    deltas = [i for i in seen if isinstance(i.event, MessageDeltaEvent)]
    assert len(deltas) >= 2 and all(i.seq is not None for i in deltas)
    text = "".join(
        i.event.payload.choices[0].delta.content for i in seen if isinstance(i.event, MessageDeltaEvent)
    )
    assert text == "one two three four five"
    answer = next(m for m in created if m.role is MessageRole.ASSISTANT)
    assert "".join(c.content for c in await alice.chunks(answer.id)) == text


async def test_cancel_stops_an_answer_while_it_streams(api: Api, client_for: ClientFor) -> None:
    alice = client_for(await api.persona("alice"))
    conversation = (await alice.create_conversation("Ask")).conversation_id
    posted, cancelled, done = False, None, None
    async with alice.stream(conversation) as stream:
        async for item in stream:
            if not posted:
                await alice.post_root(conversation, " ".join(["word"] * 100))  # 3 s at 30 ms a word
                posted = True
            if isinstance(item.event, MessageDeltaEvent) and cancelled is None:
                cancelled = await alice.cancel(item.event.payload.message_id)
            if isinstance(item.event, MessageDoneEvent):
                done = item.event.payload
                break

    assert cancelled is not None and cancelled.status is CancelStatus.CANCELLED
    assert done is not None and done.finish_reason is FinishReason.CANCELLED


async def test_a_logout_elsewhere_ends_the_stream_with_unauthorized_and_no_retry_loop(
    stack: Stack, api: Api
) -> None:
    alice = await api.persona("alice")
    conversation = await create_conversation(api, alice)
    statuses: list[StreamStatus] = []
    async with ThreadlineClient(stack.edge_url, token=alice.token) as client:
        stream = client.stream(conversation, on_status=statuses.append)
        assert (await anext(stream)).type is EventType.PRESENCE_UPDATE
        async with ThreadlineClient(stack.edge_url, token=alice.token) as elsewhere:
            await elsewhere.logout()
        with pytest.raises(Unauthorized) as ended:
            async with asyncio.timeout(10):  # the streamer checks sessions every keepalive (1 s here)
                async for _ in stream:
                    pass

    assert ended.value.code == "RGP.AUTH.INVALID_SESSION"
    assert stream.connections == 1
    assert [s.state for s in statuses] == [StreamState.CONNECTING, StreamState.OPEN, StreamState.RECONNECTING]


async def test_a_stream_the_caller_may_not_open_raises_at_once(api: Api, client_for: ClientFor) -> None:
    alice, mallory = await api.persona("alice"), await api.persona("mallory")
    conversation = await create_conversation(api, alice)
    statuses: list[StreamStatus] = []
    stream = client_for(mallory).stream(conversation, on_status=statuses.append)
    with pytest.raises(Forbidden) as refused:
        await anext(stream)
    assert refused.value.code == "RGP.RBAC.FORBIDDEN"
    assert [s.state for s in statuses] == [StreamState.CONNECTING]


async def test_a_cursor_beyond_the_history_raises_resync_required(api: Api, client_for: ClientFor) -> None:
    alice = await api.persona("alice")
    conversation = await create_conversation(api, alice)
    stream = client_for(alice).stream(conversation, last_event_id=1_000_000)
    with pytest.raises(ResyncRequired) as resync:
        await anext(stream)
    assert resync.value.last_event_id == 1_000_000
