"""Resume under load (contract 6.6, DESIGN 2 invariants): a client that keeps dropping its connection at
random points while thousands of events are written loses nothing and receives nothing twice."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import httpx
import pytest

from tests.support.api import Api, Persona
from tests.support.conversations import add_participant, create_conversation, remove_participant
from tests.support.messages import post_root
from tests.support.sse import SseStream
from tests.support.stack import Stack
from tests.support.traffic import last_seq, post_replies, visible_seqs

pytestmark = pytest.mark.e2e

EVENTS = 2000
RECONNECTS = 200
MEMBERS = ("alice", "bob", "carol", "dave", "frank", "grace", "heidi", "ivan")
SEED = 20250308


class Reader:
    """bob's client: each connection resumes with Last-Event-ID, reads a random number of the events already
    committed (so every wait is for an event that must come), and drops the connection."""

    def __init__(self, client: httpx.AsyncClient, pool: asyncpg.Pool, conversation: str, bob: Persona):
        self.client, self.pool, self.conversation, self.bob = client, pool, conversation, bob
        self.rng = random.Random(SEED)
        self.received: list[int] = []
        self.connections = 0
        self.connected = asyncio.Event()  # set after each connection

    async def connect_once(self, cursor: int) -> int:
        available = len(await visible_seqs(self.pool, self.conversation, self.bob, cursor))
        wanted = min(self.rng.randint(0, 8), available)
        headers = {**self.bob.bearer, "Last-Event-ID": str(cursor)}
        path = f"/api/stream/conversations/{self.conversation}"
        async with self.client.stream("GET", path, headers=headers) as response:
            assert response.status_code == 200
            stream = SseStream(response)
            while wanted:
                event = await stream.next(timeout=10)
                if event.id is not None:
                    self.received.append(event.id)
                    cursor = event.id
                    wanted -= 1
        self.connections += 1
        self.connected.set()
        return cursor


@pytest.mark.timeout(240)  # setup included: the first test of a worker starts its stack
async def test_a_client_dropping_its_connection_200_times_under_load_misses_and_repeats_nothing(
    stack: Stack, api: Api, pool: asyncpg.Pool
) -> None:
    members = [await api.persona(name) for name in MEMBERS]
    alice, bob, erin = members[0], members[1], await api.persona("erin")
    conversation = await create_conversation(api, alice, is_group=True, assistant_replies=False)
    for member in members[1:]:
        await add_participant(api, alice, conversation, member)
    root = await post_root(api, alice, conversation, "the busy thread")
    start = await last_seq(pool, conversation)
    # A reply writes message.created and thread.activity, and an unread.update for each other participant
    # (bob sees only his own); add and remove of erin write a membership.changed each.
    replies = EVENTS // (len(MEMBERS) + 1)
    writing = asyncio.Event()
    writing.set()
    async with httpx.AsyncClient(base_url=stack.url("streamer"), timeout=10) as client:
        reader = Reader(client, pool, conversation, bob)

        async def in_step_with_the_reader(n: int) -> None:
            """Keep the writers within 20 reconnections of the reader, so that the drops happen mid-write."""
            while reader.connections < n * RECONNECTS // replies - 20:
                reader.connected.clear()
                await reader.connected.wait()

        async def write() -> None:
            try:
                await post_replies(api, members[:4], root, replies, gate=in_step_with_the_reader)
            finally:
                writing.clear()

        async def toggle_erin() -> None:
            while writing.is_set():
                await add_participant(api, alice, conversation, erin)
                await remove_participant(api, alice, conversation, erin)

        cursor, during_writes = start, 0
        async with asyncio.timeout(180), asyncio.TaskGroup() as tasks:
            tasks.create_task(write())
            tasks.create_task(toggle_erin())
            while reader.connections < RECONNECTS:
                during_writes += writing.is_set()
                cursor = await reader.connect_once(cursor)
        expected = await visible_seqs(pool, conversation, bob, start)
        async with asyncio.timeout(30):
            while cursor < expected[-1]:
                cursor = await reader.connect_once(cursor)

    assert await last_seq(pool, conversation) - start >= EVENTS
    assert reader.received == expected, "every visible event exactly once, in order, across the reconnections"
    assert during_writes >= RECONNECTS * 3 // 4, f"only {during_writes} reconnections overlapped the writes"
