"""Publishing ephemeral events (contract 6.4): the event envelope JSON on Redis channel
``tl:conv:<conversation_id>``, for the streamers to forward. Ephemeral events carry no sequence number and are
never stored; a message published while no streamer listens is simply gone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol
from uuid import UUID

from redis.asyncio import Redis

from threadline_shared.dto.events import PresenceUpdateEvent, TypingUpdateEvent
from threadline_shared.dto.presence import PresenceUpdate, TypingUpdate
from threadline_shared.presence.redis_store import COMMAND_TIMEOUT_SECONDS, guarded

CHANNEL_PREFIX = "tl:conv:"
Message = tuple[UUID, bytes]
"""``(conversation_id, envelope JSON)``."""


def conversation_channel(conversation_id: UUID) -> str:
    return f"{CHANNEL_PREFIX}{conversation_id}"


async def publish_envelopes(
    redis: Redis, messages: Iterable[Message], *, timeout_seconds: float = COMMAND_TIMEOUT_SECONDS
) -> None:
    """Publish ``(conversation_id, envelope JSON)`` pairs in one round trip; RedisUnavailable on failure."""
    items = list(messages)
    if not items:
        return

    async def publish() -> None:
        if len(items) == 1:
            conversation_id, data = items[0]
            await redis.publish(conversation_channel(conversation_id), data)
            return
        async with redis.pipeline(transaction=False) as pipe:
            for conversation_id, data in items:
                pipe.publish(conversation_channel(conversation_id), data)
            await pipe.execute()

    await guarded(publish, timeout_seconds)


def presence_messages(update: PresenceUpdate, conversation_ids: Iterable[UUID]) -> list[Message]:
    """One ``presence.update`` in each conversation of the user (7.2); the envelope is encoded once."""
    data = PresenceUpdateEvent(payload=update).to_json()
    return [(conversation_id, data) for conversation_id in conversation_ids]


def typing_messages(updates: Iterable[TypingUpdate]) -> list[Message]:
    """Each ``typing.update`` in its own conversation (7.3)."""
    return [(update.conversation_id, TypingUpdateEvent(payload=update).to_json()) for update in updates]


async def publish_presence(redis: Redis, update: PresenceUpdate, conversation_ids: Sequence[UUID]) -> None:
    await publish_envelopes(redis, presence_messages(update, conversation_ids))


async def publish_typing(redis: Redis, updates: Sequence[TypingUpdate]) -> None:
    await publish_envelopes(redis, typing_messages(updates))


class EventPublisher(Protocol):
    async def publish(self, messages: Sequence[Message]) -> None:
        """Publish every message; raise RedisUnavailable when that fails."""
        ...


class RedisEventPublisher:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, messages: Sequence[Message]) -> None:
        await publish_envelopes(self.redis, messages)
