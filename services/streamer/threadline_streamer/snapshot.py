"""The snapshot sent after replay (contract 6.7): one ``presence.update`` per active participant (by user
id), then one ``typing.update`` per live typing entry; ephemeral frames without ``id:``. Skipped when Redis is
down."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from redis.asyncio import Redis

from threadline_shared.dto.events import PresenceUpdateEvent, TypingUpdateEvent
from threadline_shared.errors import RedisUnavailable
from threadline_shared.presence.snapshot import snapshot
from threadline_streamer.connection import Connection
from threadline_streamer.wire import ephemeral_frame

log = logging.getLogger(__name__)

SNAPSHOT_TIMEOUT_SECONDS = 1.0
_PARTICIPANTS = (
    "SELECT user_id FROM participants WHERE conversation_id = $1 AND left_at IS NULL ORDER BY user_id"
)


class Snapshotter:
    def __init__(self, pool: asyncpg.Pool, redis: Redis) -> None:
        self.pool = pool
        self.redis = redis

    async def __call__(self, connection: Connection) -> bytes:
        rows = await self.pool.fetch(_PARTICIPANTS, connection.conversation_id)
        try:
            async with asyncio.timeout(SNAPSHOT_TIMEOUT_SECONDS):
                presence, typing = await snapshot(
                    self.redis, connection.conversation_id, [row["user_id"] for row in rows]
                )
        except (RedisUnavailable, TimeoutError) as exc:
            log.info("snapshot skipped: Redis unavailable (%s)", exc.__class__.__name__)
            return b""
        frames = [
            ephemeral_frame("presence.update", PresenceUpdateEvent(payload=p).to_json()) for p in presence
        ]
        frames += [ephemeral_frame("typing.update", TypingUpdateEvent(payload=t).to_json()) for t in typing]
        return b"".join(frames)
