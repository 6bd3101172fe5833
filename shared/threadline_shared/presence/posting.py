"""Typing cleared by a post (contract 5.3, 7.3), for the api to call after the post's transaction commits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from redis.asyncio import Redis

from threadline_shared.clock import Clock
from threadline_shared.dto.presence import TypingUpdate
from threadline_shared.errors import RedisUnavailable
from threadline_shared.presence.publish import publish_typing
from threadline_shared.presence.redis_store import RedisPresenceStore

log = logging.getLogger(__name__)


async def clear_typing_after_post(
    redis: Redis, conversation_id: UUID, user_id: UUID, *, clock: Clock | None = None
) -> list[TypingUpdate]:
    """Remove every typing entry of the author in the conversation and publish one stop per removed entry
    (``expires_at`` = removal time). Returns the stops published.

    Never raises on Redis errors: the post has committed and must succeed; the failure is logged and ``[]``
    returned (the entries then expire on their own, and the sweeper publishes those stops). ``clock`` is for
    tests; by default the Redis clock decides, as for the presence service.
    """
    return await clear_typing_after_posts(redis, [(conversation_id, user_id)], clock=clock)


async def clear_typing_after_posts(
    redis: Redis, posts: Sequence[tuple[UUID, UUID]], *, clock: Clock | None = None
) -> list[TypingUpdate]:
    """:func:`clear_typing_after_post` for many ``(conversation_id, author_id)`` at once (a lean path's batch
    of posts): one pipeline clears them, one more publishes the stops, if there are any."""
    store = RedisPresenceStore(redis, clock=clock)
    try:
        stops = await store.clear_typing_many(posts)
    except RedisUnavailable as exc:
        log.warning("typing not cleared after a post in %s: %r", _conversations(posts), exc.__cause__)
        return []
    try:
        await publish_typing(redis, stops)
    except RedisUnavailable as exc:
        log.warning("typing stops not published in %s: %r", _conversations(posts), exc.__cause__)
        return []
    return stops


def _conversations(posts: Sequence[tuple[UUID, UUID]]) -> str:
    return ", ".join(sorted({str(conversation_id) for conversation_id, _ in posts}))
