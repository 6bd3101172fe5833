"""Streams the server closes (contract 6.8, 6.7): a client that stops reading is dropped as a slow consumer
(its socket closed) without slowing anyone else, and loses nothing durable when it resumes; a stream whose
session ends closes within a keepalive interval. This stack: queue 64, keepalive (and write timeout) 2 s."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest

from tests.support.api import Api, Persona
from tests.support.conversations import add_participant, create_conversation
from tests.support.messages import post_root
from tests.support.sse import open_stream
from tests.support.stack import Stack
from tests.support.traffic import (
    Follower,
    Posted,
    append_edits,
    following,
    last_seq,
    metric,
    post_replies,
    visible_seqs,
    wait_until,
)

pytestmark = pytest.mark.e2e

CLOSED = "threadline_stream_closed_total"
LATENCY_P95_BOUND_SECONDS = 1.5
"""A neighbour stalling the others would add its 2 s write timeout; typical p95 is a few milliseconds, 0.3 s
on a loaded host (the p95 of 5-30 samples is close to their maximum: one pause of the host counts)."""


@dataclass
class StalledClient:
    """A stream opened over a raw socket with a tiny receive buffer, whose reader then reads nothing."""

    sock: socket.socket
    received: bytearray = field(default_factory=bytearray)

    @classmethod
    async def open(
        cls, base_url: str, conversation_id: str, user: Persona, last_event_id: int
    ) -> StalledClient:
        url = urlsplit(base_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (url.hostname, url.port))
        request = (
            f"GET /api/stream/conversations/{conversation_id} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {user.token}\r\nLast-Event-ID: {last_event_id}\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        return cls(sock)

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    async def read_to_end(self, timeout: float) -> list[int]:
        """Read what the server sent until the connection ended; the ids of the complete events."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionResetError):
            async with asyncio.timeout(timeout):
                while chunk := await loop.sock_recv(self.sock, 65536):
                    self.received += chunk
        _, _, body = bytes(self.received).partition(b"\r\n\r\n")
        complete_blocks = dechunk(body).split(b"\n\n")[:-1]
        return [
            int(line[4:])
            for block in complete_blocks
            for line in block.split(b"\n")
            if line.startswith(b"id: ")
        ]

    def close(self) -> None:
        self.sock.close()


def dechunk(body: bytes) -> bytes:
    """The payload of a chunked HTTP/1.1 body, as far as it goes (the last chunk may be cut short)."""
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


def server_holds(stack: Stack, client_port: int) -> bool:
    """Whether the streamer process still holds the TCP connection from ``client_port``."""
    proc = stack.processes["streamer"].proc
    assert proc is not None
    return any(
        c.raddr and c.raddr.port == client_port and c.status == psutil.CONN_ESTABLISHED
        for c in psutil.Process(proc.pid).net_connections(kind="tcp")
    )


def p95_latency(posted: list[Posted], follower: Follower) -> float:
    """From each post's response to its message.created reaching the follower."""
    latencies = [follower.received_at[p.message_id] - p.at for p in posted]
    return statistics.quantiles(latencies, n=20)[-1]


@dataclass
class Room:
    alice: Persona
    bob: Persona
    carol: Persona
    dave: Persona
    conversation: str
    root: str


async def busy_room(api: Api) -> Room:
    alice, bob, carol, dave = [await api.persona(name) for name in ("alice", "bob", "carol", "dave")]
    conversation = await create_conversation(api, alice, is_group=True, assistant_replies=False)
    for member in (bob, carol, dave):
        await add_participant(api, alice, conversation, member)
    return Room(alice, bob, carol, dave, conversation, await post_root(api, alice, conversation, "firehose"))


async def overflow_until_dropped(stack: Stack, pool: asyncpg.Pool, room: Room) -> tuple[float, float]:
    """Bursts of large events for bob until the streamer reports one more slow consumer dropped (bob's
    socket buffers fill, then his queue). They are addressed to bob alone, so that a reading client's latency
    measures what the stalled one costs it, not the time it takes to swallow megabytes itself. Returns the
    slow-consumer count before and after."""
    streamer = stack.url("streamer")
    dropped_before = dropped = await metric(streamer, CLOSED, reason="slow_consumer")
    async with asyncio.timeout(30):
        while dropped == dropped_before:
            await append_edits(pool, room.conversation, room.root, 50, audience=room.bob)
            await asyncio.sleep(0.05)
            dropped = await metric(streamer, CLOSED, reason="slow_consumer")
    return dropped_before, dropped


async def wait_released(stack: Stack, client: StalledClient) -> None:
    """Until the streamer no longer holds the stalled client's connection (closed for good, not merely
    unsubscribed: a closing transport would wait forever for the client to read its buffered bytes)."""
    await wait_until(lambda: not server_holds(stack, client.port), timeout=10)


@pytest.mark.timeout(120)  # fixtures start processes; the default 60 s covers them too
async def test_a_client_that_stops_reading_is_dropped_without_slowing_the_others(
    stack: Stack, api: Api, pool: asyncpg.Pool
) -> None:
    room = await busy_room(api)
    streamer = stack.url("streamer")
    start = await last_seq(pool, room.conversation)
    async with following(streamer, room.conversation, room.carol, start) as carol:
        before = await post_replies(api, [room.alice, room.dave], room.root, 30, pause=0.02)
        stalled = await StalledClient.open(streamer, room.conversation, room.bob, start)
        try:
            dropped = asyncio.Event()
            async with asyncio.TaskGroup() as tasks:
                posting = tasks.create_task(
                    post_replies(api, [room.alice, room.dave], room.root, 10_000, pause=0.02, until=dropped)
                )
                slow_consumers = await overflow_until_dropped(stack, pool, room)
                dropped.set()
            during = posting.result()
            await wait_released(stack, stalled)
        finally:
            stalled.close()
        expected = await visible_seqs(pool, room.conversation, room.carol, start)
        await carol.wait_for(expected[-1], timeout=15)

    assert slow_consumers[1] == slow_consumers[0] + 1, "closed_total{reason=slow_consumer} counted the drop"
    assert carol.ids == expected and carol.connections == 1, "the reading client kept its stream, all of it"
    assert len(during) >= 5, "replies were posted while the stalled client was being dropped"
    assert p95_latency(before, carol) < LATENCY_P95_BOUND_SECONDS
    assert p95_latency(during, carol) < LATENCY_P95_BOUND_SECONDS
    await wait_until(lambda: gauge_is_zero(streamer), timeout=10)  # carol's close reaches the server


async def gauge_is_zero(streamer: str) -> bool:
    return await metric(streamer, "threadline_stream_connections") == 0


@pytest.mark.timeout(120)  # fixtures start processes; the default 60 s covers them too
async def test_a_dropped_slow_consumer_resumes_with_last_event_id_and_misses_nothing(
    stack: Stack, api: Api, pool: asyncpg.Pool
) -> None:
    room = await busy_room(api)
    streamer = stack.url("streamer")
    start = await last_seq(pool, room.conversation)
    stalled = await StalledClient.open(streamer, room.conversation, room.bob, start)
    try:
        await overflow_until_dropped(stack, pool, room)
        await wait_released(stack, stalled)
        before_drop = await stalled.read_to_end(timeout=10)
    finally:
        stalled.close()
    await post_replies(api, [room.alice], room.root, 3)  # and life goes on
    expected = await visible_seqs(pool, room.conversation, room.bob, start)
    cursor = before_drop[-1] if before_drop else start
    async with open_stream(streamer, room.conversation, room.bob.token, last_event_id=cursor) as stream:
        resumed = [event.id for event in await stream.durable(len(expected) - len(before_drop), timeout=20)]

    assert before_drop == expected[: len(before_drop)]
    assert before_drop + resumed == expected


async def test_a_stream_ends_within_a_keepalive_interval_after_its_session_is_logged_out(
    stack: Stack, api: Api
) -> None:
    alice = await api.persona("alice")
    conversation = await create_conversation(api, alice, assistant_replies=False)
    streamer = stack.url("streamer")
    ended_before = await metric(streamer, CLOSED, reason="session_ended")
    async with open_stream(streamer, conversation, alice.token) as stream:
        await stream.until("presence.update")
        logged_out = await api.post("/api/auth/logout", alice)
        assert logged_out.status_code == 200, logged_out.text
        with pytest.raises(EOFError):
            async with asyncio.timeout(6):  # keepalive 2 s: the next session check
                while True:
                    await stream.next(timeout=6)

    assert await metric(streamer, CLOSED, reason="session_ended") == ended_before + 1
    refused = await api.get("/api/auth/me", alice)
    assert refused.status_code == 401


@pytest.mark.parametrize("last_event_id", [None, 0], ids=["lean-connect", "full-connect"])
async def test_a_stream_whose_client_pipelined_another_request_still_ends_when_the_client_leaves(
    stack: Stack, api: Api, last_event_id: int | None
) -> None:
    """A request sent behind a live stream on the same connection waits (HTTP/1.1 pipelining), and uvicorn
    stops reading that connection meanwhile, so the client's close is not read; the stream must still end
    and unsubscribe, not write into a closed socket until its session ends. It ends at the first write
    after the close (a keepalive at the latest: within one interval, 2 s here)."""
    alice = await api.persona("alice")
    conversation = await create_conversation(api, alice, assistant_replies=False)
    streamer = stack.url("streamer")
    url = urlsplit(streamer)
    closed_before = await metric(streamer, CLOSED, reason="client_disconnect")
    cursor = "" if last_event_id is None else f"Last-Event-ID: {last_event_id}\r\n"
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(
        f"GET /api/stream/conversations/{conversation} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {alice.token}\r\n{cursor}\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"retry: 3000\n\n"), 10)
    assert head.startswith(b"HTTP/1.1 200 ")
    writer.write(f"GET /healthz HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())  # once it streams
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()

    await wait_until(lambda: _closed_more(streamer, closed_before), timeout=10)  # keepalive interval 2 s


async def _closed_more(streamer: str, before: float) -> bool:
    return await metric(streamer, CLOSED, reason="client_disconnect") > before
