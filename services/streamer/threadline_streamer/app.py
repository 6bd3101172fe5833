"""The streamer application: ``create_app(settings, clock=...)``.

Its lifespan owns, in one TaskGroup, the supervised LISTEN connection, the hub's dispatch loop, the Redis
pub/sub forwarder, the keepalive/session sweeper and retention. :func:`close_streams` ends every stream
promptly at shutdown (clients resume elsewhere with ``Last-Event-ID``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TypedDict
from uuid import UUID

import asyncpg
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request

from threadline_shared.app import create_service_app, database_missing
from threadline_shared.clock import Clock, SystemClock
from threadline_shared.db import create_pool
from threadline_shared.limiter import Limiter
from threadline_shared.ratelimit.rules import RuleBook
from threadline_shared.redis import create_redis
from threadline_shared.server import HeapKeeper, settle_heap
from threadline_streamer.connection import CloseReason
from threadline_streamer.ephemeral import EphemeralForwarder
from threadline_streamer.fastpath import Connects
from threadline_streamer.hub import Hub
from threadline_streamer.listener import Listener
from threadline_streamer.retention import Retention
from threadline_streamer.routes import routes
from threadline_streamer.settings import StreamerSettings
from threadline_streamer.snapshot import Snapshotter
from threadline_streamer.stream import StreamHandoff
from threadline_streamer.sweeper import Sweeper

SERVICE = "streamer"


class State(TypedDict):
    settings: StreamerSettings
    pool: asyncpg.Pool
    redis: Redis
    hub: Hub
    listener: Listener
    snapshot: Snapshotter
    rules: RuleBook
    limiter: Limiter


def close_streams(app: Starlette) -> None:
    hub: Hub | None = getattr(app.state, "hub", None)
    if hub is not None:
        hub.closing = True
        for connection in hub.connections():
            connection.close(CloseReason.SHUTDOWN)


def create_app(settings: StreamerSettings, *, clock: Clock | None = None) -> Starlette:
    clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        pool = await create_pool(
            settings.database_url,
            min_size=settings.database_pool_min_size,
            max_size=settings.database_pool_max_size,
        )
        redis = create_redis(settings.redis_url)
        hub = Hub(pool, queue_size=settings.stream_queue_size)
        app.state.hub = hub
        listener = Listener(settings.database_url, hub)
        forwarder = EphemeralForwarder(redis, hub)
        snapshotter = Snapshotter(pool, redis)
        forwarder.on_event = hub.on_membership_changed = snapshotter.invalidate
        unfollow = hub.on_channel_closed

        def channel_closed(conversation_id: UUID) -> None:
            unfollow(conversation_id)
            snapshotter.forget(conversation_id)

        hub.on_channel_closed = channel_closed
        sweeper = Sweeper(hub, pool, clock, settings.stream_keepalive_seconds)
        retention = Retention(
            pool,
            clock,
            interval=settings.event_prune_interval_seconds,
            max_age=timedelta(hours=settings.event_retention_hours),
            max_events=settings.event_retention_max_events,
            batch=settings.event_prune_batch_size,
        )
        rules = RuleBook(pool, settings)
        await rules.reload()
        # A closed stream's cyclic garbage waits, frozen, for a reclaim (see HeapKeeper).
        heap = HeapKeeper(ended=lambda: hub.unsubscribed, live=hub.connection_count)
        limiter = Limiter(
            redis, timeout_ms=settings.rate_limit_redis_timeout_ms, enabled=settings.rate_limit_enabled
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                background = [
                    tasks.create_task(job.run())
                    for job in (hub, listener, forwarder, sweeper, retention, rules, heap)
                ]
                settle_heap()  # everything built so far lives as long as the process
                yield {
                    "settings": settings,
                    "pool": pool,
                    "redis": redis,
                    "hub": hub,
                    "listener": listener,
                    "snapshot": snapshotter,
                    "rules": rules,
                    "limiter": limiter,
                }
                close_streams(app)
                for task in background:
                    task.cancel()
        finally:
            await redis.aclose()
            await pool.close()

    async def readiness(request: Request) -> list[str]:
        missing = await database_missing(request.state.pool)
        if not request.state.listener.connected:
            missing.append("listener")
        return missing

    app = create_service_app(
        settings, service=SERVICE, routes=routes(), lifespan=lifespan, readiness=readiness
    )
    app.state.clock = clock
    app.state.connects = Connects(SERVICE, app.state)  # served below ASGI: threadline_streamer.protocol
    app.add_middleware(StreamHandoff)  # outermost of ours: a stream's live part runs without the stack
    return app
