"""The presence service application: `create_app(settings)` is the composition root tests use too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import asyncpg
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute

from threadline_presence.settings import PresenceSettings
from threadline_shared.app import create_service_app, database_missing, redis_missing
from threadline_shared.db import create_pool
from threadline_shared.redis import create_redis

SERVICE = "presence"


class State(TypedDict):
    settings: PresenceSettings
    pool: asyncpg.Pool
    redis: Redis


def routes() -> list[BaseRoute]:
    """The service's own routes (the contract's route table, section 2.2)."""
    return []


def create_app(settings: PresenceSettings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        pool = await create_pool(
            settings.database_url,
            min_size=settings.database_pool_min_size,
            max_size=settings.database_pool_max_size,
        )
        redis = create_redis(settings.redis_url)
        try:
            yield {"settings": settings, "pool": pool, "redis": redis}
        finally:
            await redis.aclose()
            await pool.close()

    async def readiness(request: Request) -> list[str]:
        return await database_missing(request.state.pool) + await redis_missing(request.state.redis)

    return create_service_app(
        settings, service=SERVICE, routes=routes(), lifespan=lifespan, readiness=readiness
    )
