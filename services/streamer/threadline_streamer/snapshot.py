"""The snapshot sent after replay (contract 6.7): one ``presence.update`` per active participant (by user
id), then one ``typing.update`` per live typing entry; ephemeral frames without ``id:``. Skipped when Redis is
down."""

from __future__ import annotations

import asyncio
import logging
import time
from uuid import UUID

import asyncpg
import orjson
from redis.asyncio import Redis

from threadline_shared.dto.base import format_timestamp
from threadline_shared.dto.events import TypingUpdateEvent
from threadline_shared.dto.presence import PresenceUpdate
from threadline_shared.errors import RedisUnavailable
from threadline_shared.presence.redis_store import RedisPresenceStore
from threadline_shared.presence.snapshot import store_snapshot
from threadline_streamer.connection import Connection
from threadline_streamer.wire import ephemeral_frame

log = logging.getLogger(__name__)

SNAPSHOT_TIMEOUT_SECONDS = 1.0
BUILDS_AT_ONCE = 16
"""Snapshots built at the same time; the others wait their turn. Each build holds one Redis connection, and
the client's pool holds at most 100 (``threadline_shared.redis.MAX_CONNECTIONS``). With redis-py's default
pool the 101st failed at once: when connects to 150 conversations came at once (as after a restart), 50 of
them got no snapshot (tests/streamer/test_snapshot_builds.py). The services' pool now makes such a call wait
instead; this bound still leaves the other connections to the rate limiter, and keeps the pool small: each
new pooled connection cost about a millisecond of CPU (redis-py reads its package metadata)."""
_PARTICIPANTS = (
    "SELECT user_id FROM participants WHERE conversation_id = $1 AND left_at IS NULL ORDER BY user_id"
)


SNAPSHOT_TTL_SECONDS = 5.0
"""Bounds how stale a cached ``last_seen_at`` may be: a heartbeat that keeps the status publishes nothing,
so no event bumps the version for it. Status changes and typing always do. (At 2 s, rebuilding the
snapshots of 20 conversations of 300 members took a sixth of the streamer's CPU while clients connected.)"""


def presence_frame(update: PresenceUpdate) -> bytes:
    """The ``presence.update`` frame of ``update``: the bytes of ``PresenceUpdateEvent(payload=update)``
    (tests/streamer/test_snapshot_frames.py holds the two together), without pydantic's serializer.
    A snapshot has one per participant; measured (bench/streamer_fanout.py, 15,000 connections over 150
    conversations of 100): through the DTO, encoding them took about a tenth of the streamer's CPU while
    clients connected."""
    payload = {"user_id": str(update.user_id), "status": update.status.value}
    if update.last_seen_at is not None:
        payload["last_seen_at"] = format_timestamp(update.last_seen_at)
    return ephemeral_frame("presence.update", orjson.dumps({"type": "presence.update", "payload": payload}))


class Snapshotter:
    """Builds a conversation's snapshot once and shares it between connections.

    A snapshot holds one frame per participant, so building it per connection made connects cost
    O(participants). It is cached per conversation under a version that every ephemeral event and every
    ``membership.changed`` of the conversation bumps (the forwarder and the hub call :meth:`invalidate`);
    connections arriving together share one build; an entry also expires after
    :data:`SNAPSHOT_TTL_SECONDS`. A connection subscribes before it asks for the snapshot, so an event that
    a cached snapshot predates either bumped the version first or reaches that connection live.
    """

    def __init__(self, pool: asyncpg.Pool, redis: Redis) -> None:
        self.pool = pool
        self.store = RedisPresenceStore(redis)
        self._versions: dict[UUID, int] = {}
        self._cache: dict[UUID, tuple[int, float, bytes]] = {}
        self._building: dict[tuple[UUID, int], asyncio.Future[bytes | None]] = {}
        self._builds = asyncio.Semaphore(BUILDS_AT_ONCE)

    def invalidate(self, conversation_id: UUID) -> None:
        self._versions[conversation_id] = self._versions.get(conversation_id, 0) + 1
        self._cache.pop(conversation_id, None)

    def forget(self, conversation_id: UUID) -> None:
        """The conversation has no live subscriber here any more."""
        self.invalidate(conversation_id)
        del self._versions[conversation_id]

    def cached(self, conversation_id: UUID) -> bytes | None:
        """The conversation's snapshot when a current one is at hand (no I/O), else None."""
        cached = self._cache.get(conversation_id)
        if (
            cached is not None
            and cached[0] == self._versions.get(conversation_id, 0)
            and time.monotonic() - cached[1] < SNAPSHOT_TTL_SECONDS
        ):
            return cached[2]
        return None

    async def __call__(self, connection: Connection) -> bytes:
        conversation_id = connection.conversation_id
        while True:
            version = self._versions.get(conversation_id, 0)
            cached = self.cached(conversation_id)
            if cached is not None:
                return cached
            key = (conversation_id, version)
            building = self._building.get(key)
            if building is None:
                return await self._build_shared(conversation_id, version, key) or b""
            try:
                return await asyncio.shield(building) or b""
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if building.cancelled() and task is not None and not task.cancelling():
                    continue  # the connect that was building it was cancelled, not this one: build anew
                raise

    async def _build_shared(self, conversation_id: UUID, version: int, key: tuple[UUID, int]) -> bytes | None:
        """Build the snapshot for the connects that arrive meanwhile too; if this connect is cancelled, they
        see the shared build cancelled and build it themselves."""
        building: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._building[key] = building
        try:
            async with self._builds:
                data = await self._build(conversation_id)
            building.set_result(data)
        except asyncio.CancelledError:
            building.cancel()
            raise
        except BaseException as exc:
            building.set_exception(exc)
            building.exception()  # retrieved here; waiters re-raise it
            raise
        finally:
            del self._building[key]
        if data is not None and self._versions.get(conversation_id, 0) == version:
            self._cache[conversation_id] = (version, time.monotonic(), data)
        return data

    async def _build(self, conversation_id: UUID) -> bytes | None:
        rows = await self.pool.fetch(_PARTICIPANTS, conversation_id)
        try:
            async with asyncio.timeout(SNAPSHOT_TIMEOUT_SECONDS):
                presence, typing = await store_snapshot(
                    self.store, conversation_id, [row["user_id"] for row in rows]
                )
        except (RedisUnavailable, TimeoutError) as exc:
            log.info("snapshot skipped: Redis unavailable (%s)", exc.__class__.__name__)
            return None
        frames = [presence_frame(update) for update in presence]
        frames += [ephemeral_frame("typing.update", TypingUpdateEvent(payload=t).to_json()) for t in typing]
        return b"".join(frames)
