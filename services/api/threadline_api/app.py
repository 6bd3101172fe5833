"""The api service application: `create_app(settings)` is the composition root tests use too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import asyncpg
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute

from threadline_api.settings import ApiSettings
from threadline_shared.app import create_service_app, database_missing
from threadline_shared.db import create_pool
from threadline_shared.redis import create_redis

SERVICE = "api"


class State(TypedDict):
    settings: ApiSettings
    pool: asyncpg.Pool
    redis: Redis


def routes() -> list[BaseRoute]:
    """The service's own routes (the contract's route table, section 2.2)."""
    return []


def create_app(settings: ApiSettings) -> Starlette:
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
        return await database_missing(request.state.pool)

    return create_service_app(
        settings, service=SERVICE, routes=routes(), lifespan=lifespan, readiness=readiness
    )
