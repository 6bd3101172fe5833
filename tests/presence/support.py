"""Twins and helpers for presence tests: a recording publisher, fixed memberships, a subscriber on the
``tl:conv:<conversation_id>`` channels, and the presence app served over a real socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from redis.asyncio import Redis

from tests.support.factories import create_user
from threadline_shared.clock import SystemClock
from threadline_shared.errors import DatabaseUnavailable
from threadline_shared.presence.publish import Message, conversation_channel
from threadline_shared.sessions import SessionService
from threadline_shared.settings import Settings


@dataclass
class RecordingPublisher:
    """Keeps every published message as ``(conversation_id, envelope)``."""

    messages: list[tuple[UUID, dict[str, Any]]] = field(default_factory=list)

    async def publish(self, messages: Sequence[Message]) -> None:
        self.messages += [(conversation_id, orjson.loads(data)) for conversation_id, data in messages]

    def take(self) -> list[tuple[UUID, dict[str, Any]]]:
        taken, self.messages = self.messages, []
        return taken


@dataclass
class FixedMemberships:
    """user -> conversations, as the test sets them; ``down`` makes every read fail like a lost database."""

    conversations: dict[UUID, list[UUID]] = field(default_factory=dict)
    down: bool = False

    async def conversations_of(self, user_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
        if self.down:
            raise DatabaseUnavailable()
        return {user_id: self.conversations.get(user_id, []) for user_id in user_ids}


class Subscriber:
    """A Redis pub/sub subscriber on conversation channels, collecting envelopes as they arrive."""

    def __init__(self, redis: Redis) -> None:
        self.pubsub = redis.pubsub()
        self.received: list[tuple[UUID, dict[str, Any]]] = []
        self._arrived = asyncio.Condition()

    async def subscribe(self, *conversation_ids: UUID | str) -> None:
        await self.pubsub.subscribe(*(conversation_channel(UUID(str(c))) for c in conversation_ids))
        # Wait for every subscription confirmation, so nothing published afterwards is missed.
        for _ in conversation_ids:
            message = await asyncio.wait_for(self.pubsub.get_message(timeout=5), 5)
            while message is None or message["type"] != "subscribe":
                message = await asyncio.wait_for(self.pubsub.get_message(timeout=5), 5)

    async def run(self) -> None:
        while True:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is None:
                continue
            channel = message["channel"].decode()
            async with self._arrived:
                self.received.append((UUID(channel.rsplit(":", 1)[1]), orjson.loads(message["data"])))
                self._arrived.notify_all()

    async def wait_for(self, count: int, timeout: float = 5) -> list[tuple[UUID, dict[str, Any]]]:
        """At least ``count`` envelopes received (bounded wait); returns all received so far."""
        return await self.wait_until(lambda received: len(received) >= count, timeout)

    async def wait_until(
        self, done: Callable[[list[tuple[UUID, dict[str, Any]]]], bool], timeout: float = 5
    ) -> list[tuple[UUID, dict[str, Any]]]:
        """Until ``done`` holds for the envelopes received (bounded wait); returns all received so far."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: done(self.received)), timeout)
        return list(self.received)

    async def quiet(self, seconds: float) -> list[tuple[UUID, dict[str, Any]]]:
        """Everything received after letting ``seconds`` pass (to show that nothing more arrives)."""
        await asyncio.sleep(seconds)
        return list(self.received)


@contextlib.asynccontextmanager
async def subscribed(redis_url: str, *conversation_ids: UUID | str) -> AsyncIterator[Subscriber]:
    client = Redis.from_url(redis_url)
    subscriber = Subscriber(client)
    try:
        await subscriber.subscribe(*conversation_ids)
        task = asyncio.create_task(subscriber.run())
        try:
            yield subscriber
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await subscriber.pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


def presence_events(received: Sequence[tuple[UUID, dict[str, Any]]]) -> list[tuple[UUID, dict[str, Any]]]:
    return [(c, e["payload"]) for c, e in received if e["type"] == "presence.update"]


def typing_events(received: Sequence[tuple[UUID, dict[str, Any]]]) -> list[tuple[UUID, dict[str, Any]]]:
    return [(c, e["payload"]) for c, e in received if e["type"] == "typing.update"]


async def user_with_token(pool: asyncpg.Pool, username: str) -> tuple[UUID, str]:
    """A user (below the API) and a live bearer token of theirs."""
    user_id = await create_user(pool, username)
    row = await pool.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
    assert row is not None
    issued = await SessionService(pool, Settings.load(env="test"), SystemClock()).issue(row, via_cookie=False)
    return user_id, issued.token
