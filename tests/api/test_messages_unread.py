"""Unread counts over random histories (contract 5.8, 6.5): after any sequence of posts, replies, deletes,
restores, joins, leaves and mark-reads, ``GET .../unread`` and ``unread_total`` equal a brute-force model of
5.8 driven by the server's own timestamps, and a client that applies the ``unread.update`` events to an older
snapshot holds the same counts as a fresh fetch.

What a client cannot learn from ``unread.update`` is left out of that last comparison, as the contract says:
delete and restore emit none (5.6), a membership that starts or ends invalidates the snapshot, and the author
of a post gets none (6.5) but knows that posting marked the thread read (5.8)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.support.api import Api, Persona
from tests.support.conversations import add_participant, create_conversation, remove_participant
from tests.support.messages import events_after, post_root, reply, unlimited_api, unread_counts

NAMES = ("alice", "bob", "carol", "dave")  # alice owns every conversation and never leaves; dave starts out
OWNER = 0


@pytest.fixture
async def api(pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str) -> AsyncIterator[Api]:
    """One api for all examples; each example starts a conversation of its own."""
    async with unlimited_api(pool, database_url, redis_url) as running:
        yield running


@dataclass
class Message:
    id: str
    root: str
    author: int
    created_at: datetime
    deleted: bool = False


@dataclass
class Model:
    """Contract 5.8 by brute force, over the server's timestamps."""

    joined_at: dict[int, datetime | None]
    roles: dict[int, str]
    messages: list[Message] = field(default_factory=list)
    watermarks: dict[tuple[int, str], datetime] = field(default_factory=dict)

    def active(self, user: int) -> bool:
        return self.joined_at.get(user) is not None

    def writer(self, user: int) -> bool:
        return self.active(user) and self.roles[user] != "viewer"

    def roots(self) -> list[str]:
        return list(dict.fromkeys(m.root for m in self.messages))

    def move_watermark(self, user: int, root: str, at: datetime) -> None:
        old = self.watermarks.get((user, root))
        self.watermarks[(user, root)] = at if old is None else max(old, at)

    def unread(self, user: int, root: str) -> int:
        joined, watermark = self.joined_at[user], self.watermarks.get((user, root))
        assert joined is not None
        return sum(
            1
            for m in self.messages
            if m.root == root
            and not m.deleted
            and m.author != user
            and m.created_at > joined
            and (watermark is None or m.created_at > watermark)
        )

    def summary(self, user: int) -> dict[str, int]:
        counts = {root: self.unread(user, root) for root in self.roots()}
        return {root: n for root, n in counts.items() if n}


@dataclass
class Client:
    """What a user's client knows: a snapshot of ``GET .../unread`` kept current with ``unread.update``;
    ``stale`` holds the threads whose count changed without telling the client."""

    counts: dict[str, int]
    stale: set[str] = field(default_factory=set)


class History:
    """One example: a fresh conversation driven over HTTP, the model, and the users' clients."""

    def __init__(self, api: Api, pool: asyncpg.Pool, users: list[Persona], conversation_id: str) -> None:
        self.api, self.pool, self.users, self.conversation_id = api, pool, users, conversation_id
        self.model = Model(joined_at={}, roles={})
        self.clients: dict[int, Client] = {}
        self.seen_seq = 0

    async def joined_at(self, user: int) -> datetime:
        value: datetime = await self.pool.fetchval(
            """
            SELECT joined_at FROM participants
            WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL
            """,
            UUID(self.conversation_id),
            self.users[user].id,
        )
        return value

    async def created_at(self, message_id: str) -> datetime:
        value: datetime = await self.pool.fetchval(
            "SELECT created_at FROM messages WHERE id = $1", UUID(message_id)
        )
        return value

    async def start(self) -> None:
        self.model.joined_at[OWNER], self.model.roles[OWNER] = await self.joined_at(OWNER), "owner"
        await self.join(1, "member")
        await self.join(2, "viewer")

    async def post(self, author: int, parent: Message | None) -> None:
        user = self.users[author]
        if parent is None:
            message_id = await post_root(self.api, user, self.conversation_id)
            root = message_id
        else:
            message_id, root = await reply(self.api, user, parent.id), parent.root
        message = Message(message_id, root, author, await self.created_at(message_id))
        self.model.messages.append(message)
        self.model.move_watermark(author, root, message.created_at)
        await self.deliver_events()
        if author in self.clients:  # the author's client knows its post marked the thread read
            self.clients[author].counts[root] = 0
            self.clients[author].stale.discard(root)

    async def set_deleted(self, message: Message, deleted: bool) -> None:
        action = "delete" if deleted else "restore"
        response = await self.api.post(f"/api/messages/{message.id}/{action}", self.users[OWNER])
        assert response.status_code == 204, response.text
        message.deleted = deleted
        for client in self.clients.values():
            client.stale.add(message.root)

    async def join(self, user: int, role: str) -> None:
        await add_participant(self.api, self.users[OWNER], self.conversation_id, self.users[user], role)
        if not self.model.active(user):
            self.model.joined_at[user] = await self.joined_at(user)
            self.clients.pop(user, None)
        self.model.roles[user] = role

    async def leave(self, user: int) -> None:
        await remove_participant(self.api, self.users[user], self.conversation_id, self.users[user])
        self.model.joined_at[user] = None
        self.clients.pop(user, None)

    async def mark_read(self, user: int, root: str, message: Message | None) -> None:
        body = {"message_id": message.id} if message else None
        now: datetime = await self.pool.fetchval(
            "SELECT clock_timestamp()"
        )  # no message is created meanwhile
        response = await self.api.post(f"/api/threads/{root}/read", self.users[user], json=body)
        assert response.status_code == 200, response.text
        self.model.move_watermark(user, root, message.created_at if message else now)
        assert response.json() == {"root_id": root, "unread": self.model.unread(user, root)}
        await self.deliver_events()

    async def snapshot(self, user: int) -> None:
        self.clients[user] = Client(await unread_counts(self.api, self.users[user], self.conversation_id))

    async def deliver_events(self) -> None:
        """Hand each client the ``unread.update`` events addressed to its user since the last delivery."""
        events = await events_after(self.pool, self.conversation_id, self.seen_seq)
        for event in events:
            self.seen_seq = event["seq"]
            if event["type"] != "unread.update":
                continue
            (user,) = [i for i, persona in enumerate(self.users) if str(persona.id) == event["audience"]]
            assert self.model.active(user)
            payload = event["envelope"]["payload"]
            if user in self.clients:
                self.clients[user].counts[payload["root_id"]] = payload["unread"]
                self.clients[user].stale.discard(payload["root_id"])

    async def check(self) -> None:
        for user, persona in enumerate(self.users):
            if not self.model.active(user):
                continue
            expected = self.model.summary(user)
            fresh = await unread_counts(self.api, persona, self.conversation_id)
            assert fresh == expected, (persona.username, fresh, expected)
            listed = (await self.api.get("/api/conversations", persona)).json()["conversations"]
            (mine,) = [c for c in listed if c["id"] == self.conversation_id]
            assert mine["unread_total"] == sum(expected.values()), persona.username
            client = self.clients.get(user)
            if client is not None:
                for root in self.model.roots():
                    if root not in client.stale:
                        assert client.counts.get(root, 0) == fresh.get(root, 0), (persona.username, root)

    async def run(self, kind: str, who: int, pick: int, read_up_to: int | None, role: str) -> None:
        messages = self.model.messages
        author = who if self.model.writer(who) else OWNER  # histories grow even while few can write
        if kind == "root":
            await self.post(author, None)
        elif kind == "reply":  # a root while there is nothing to reply to
            await self.post(author, messages[pick % len(messages)] if messages else None)
        elif kind in ("delete", "restore") and messages:
            await self.set_deleted(messages[pick % len(messages)], kind == "delete")
        elif kind == "join" and who != OWNER:
            await self.join(who, role)
        elif kind == "leave" and who != OWNER and self.model.active(who):
            await self.leave(who)
        elif kind == "read" and self.model.active(who) and messages:
            roots = self.model.roots()
            root = roots[pick % len(roots)]
            in_thread = [m for m in messages if m.root == root]
            message = None if read_up_to is None else in_thread[read_up_to % len(in_thread)]
            await self.mark_read(who, root, message)
        elif kind == "snapshot" and self.model.active(who):
            await self.snapshot(who)
        elif kind == "check":
            await self.check()


# Posts are the commonest operations, so that histories grow threads worth reading, deleting and counting.
KINDS = ["root"] * 3 + ["reply"] * 7 + ["delete", "restore", "join", "join", "leave", "read", "read"]
KINDS += ["read", "snapshot", "check"]
operations = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, len(NAMES) - 1),  # who
        st.integers(0, 1_000),  # which message or thread
        st.none() | st.integers(0, 1_000),  # which message to read up to (None: all)
        st.sampled_from(["member", "viewer", "admin"]),  # role when joining
    ),
    min_size=12,
    max_size=40,
)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: over HTTP it outlasts the test timeout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
async def test_unread_counts_and_events_follow_the_model(
    api: Api, pool: asyncpg.Pool, ops: list[tuple[str, int, int, int | None, str]]
) -> None:
    users = [await api.persona(name) for name in NAMES]
    conversation_id = await create_conversation(api, users[OWNER], "History", assistant_replies=False)
    history = History(api, pool, users, conversation_id)
    await history.start()
    for user in (OWNER, 1, 2):
        await history.snapshot(user)

    for op in ops:
        await history.run(*op)

    await history.check()
