"""The presence service application: `create_app(settings, clock=...)` is the composition root tests use too.

The lifespan opens the pool and the Redis client, builds the presence logic on the Redis store, and runs the
sweeper, the membership listener and the rate-limit rule book (contract 8.2: the limiter runs in presence
too) in a TaskGroup; all are cancelled at shutdown. Readiness = database and
Redis; when Redis goes away the routes answer 503 ``redis_unavailable`` and ``/readyz`` names ``redis``,
and both recover on their own when it is back (the client reconnects on the next command).

The Redis client is the services' own (:func:`threadline_shared.redis.create_redis`): it has no
``socket_timeout``, and every operation is bounded by an ``asyncio.timeout`` instead (see
:mod:`threadline_shared.presence.redis_store`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TypedDict
from uuid import UUID

import asyncpg
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request

from threadline_presence import repository
from threadline_presence.fastpath import HeartbeatFastPath, Heartbeats
from threadline_presence.listener import MembershipListener
from threadline_presence.memberships import ConversationsCache
from threadline_presence.routes import routes
from threadline_presence.service import PresenceService
from threadline_presence.settings import PresenceSettings
from threadline_presence.sweeper import run_sweeper
from threadline_shared.app import create_service_app, database_missing, redis_missing
from threadline_shared.clock import Clock, SystemClock
from threadline_shared.db import create_pool
from threadline_shared.limiter import Limiter
from threadline_shared.presence.publish import RedisEventPublisher
from threadline_shared.presence.redis_store import RedisPresenceStore
from threadline_shared.ratelimit.rules import RuleBook
from threadline_shared.redis import create_redis
from threadline_shared.server import YOUNG_GENERATION_THRESHOLD, settle_heap

SERVICE = "presence"
MEMBERSHIP_CACHE_TTL_SECONDS = 30.0
"""A safety net only: committed membership changes invalidate the cache through the listener."""
REDIS_TIMEOUT_SECONDS = 1.0


async def redis_missing_within(redis: Redis, timeout_seconds: float = REDIS_TIMEOUT_SECONDS) -> list[str]:
    try:
        async with asyncio.timeout(timeout_seconds):
            return await redis_missing(redis)
    except TimeoutError:
        return ["redis"]


class State(TypedDict):
    settings: PresenceSettings
    pool: asyncpg.Pool
    redis: Redis
    presence: PresenceService
    rules: RuleBook
    limiter: Limiter


def create_app(settings: PresenceSettings, *, clock: Clock | None = None) -> Starlette:
    """The presence service. ``clock`` drives sessions and presence time (tests pass a FakeClock; None = the
    system clock for sessions and the Redis server clock for presence and typing, contract 7.5)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        pool = await create_pool(
            settings.database_url,
            min_size=settings.database_pool_min_size,
            max_size=settings.database_pool_max_size,
        )

        async def load(user_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
            return await repository.conversations_of(pool, user_ids)

        redis = create_redis(settings.redis_url, timeout_seconds=REDIS_TIMEOUT_SECONDS)
        try:
            cache = ConversationsCache(load, ttl_seconds=MEMBERSHIP_CACHE_TTL_SECONDS)
            store = RedisPresenceStore(
                redis,
                timeout_seconds=settings.presence_timeout_seconds,
                clock=clock,
                command_timeout_seconds=REDIS_TIMEOUT_SECONDS,
            )
            presence = PresenceService(
                store, RedisEventPublisher(redis), cache, typing_max_seconds=settings.typing_max_seconds
            )
            listener = MembershipListener(settings.database_url, pool, cache)
            rules = RuleBook(pool, settings)
            await rules.reload()
            limiter = Limiter(
                redis,
                timeout_ms=settings.rate_limit_redis_timeout_ms,
                enabled=settings.rate_limit_enabled,
                clock=clock,
            )
            async with asyncio.TaskGroup() as tasks:
                background = [
                    tasks.create_task(
                        run_sweeper(presence, settings.presence_sweep_interval_ms / 1000),
                        name="presence-sweeper",
                    ),
                    tasks.create_task(listener.run(), name="membership-listener"),
                    tasks.create_task(rules.run(), name="rate-limit-rules"),
                ]
                settle_heap(young_generation=YOUNG_GENERATION_THRESHOLD)
                try:
                    yield {
                        "settings": settings,
                        "pool": pool,
                        "redis": redis,
                        "presence": presence,
                        "rules": rules,
                        "limiter": limiter,
                    }
                finally:
                    for task in background:
                        task.cancel()
        finally:
            await redis.aclose()
            await pool.close()

    async def readiness(request: Request) -> list[str]:
        return await database_missing(request.state.pool) + await redis_missing_within(request.state.redis)

    app = create_service_app(
        settings, service=SERVICE, routes=routes(), lifespan=lifespan, readiness=readiness
    )
    app.state.clock = clock or SystemClock()
    app.state.heartbeats = Heartbeats(SERVICE, app.state)  # below ASGI too: threadline_presence.protocol
    app.add_middleware(HeartbeatFastPath, heartbeats=app.state.heartbeats)  # outermost of ours
    return app
