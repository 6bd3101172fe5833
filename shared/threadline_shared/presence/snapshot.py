"""The presence and typing snapshot of a conversation (contract 6.7, 7.4), shared by the presence service's
``GET /api/conversations/{conversation_id}/presence`` and the streamer's snapshot on connect."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from redis.asyncio import Redis

from threadline_shared.clock import Clock
from threadline_shared.dto.presence import PresenceUpdate, TypingUpdate
from threadline_shared.presence.redis_store import RedisPresenceStore
from threadline_shared.presence.store import PresenceStore


async def store_snapshot(
    store: PresenceStore, conversation_id: UUID, participant_ids: Sequence[UUID]
) -> tuple[list[PresenceUpdate], list[TypingUpdate]]:
    """One presence per participant by ``user_id`` (never seen: ``offline`` without ``last_seen_at``), and
    the conversation's live typing entries by ``expires_at``."""
    participants = await store.presence_of(sorted(set(participant_ids)))
    return participants, await store.typing_in(conversation_id)


async def snapshot(
    redis: Redis, conversation_id: UUID, participant_ids: Sequence[UUID], *, clock: Clock | None = None
) -> tuple[list[PresenceUpdate], list[TypingUpdate]]:
    """:func:`store_snapshot` on Redis. Raises :class:`~threadline_shared.errors.RedisUnavailable` when
    Redis fails (the streamer then skips the snapshot, 6.7)."""
    return await store_snapshot(RedisPresenceStore(redis, clock=clock), conversation_id, participant_ids)
