"""The api service application: ``create_app(settings, clock=...)`` is the composition root tests use too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict
from uuid import UUID

import asyncpg
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute

from threadline_api.accounts import login, users
from threadline_api.conversations import routes as conversation_routes
from threadline_api.messages import cancel as cancel_routes
from threadline_api.messages import routes as message_routes
from threadline_api.messages.fastpath import Posts
from threadline_api.passwords import Passwords
from threadline_api.ratelimits import routes as ratelimit_routes
from threadline_api.settings import ApiSettings
from threadline_shared.app import create_service_app, database_missing
from threadline_shared.clock import Clock, SystemClock
from threadline_shared.db import QueryLogger, create_pool
from threadline_shared.limiter import Limiter
from threadline_shared.presence.posting import clear_typing_after_post
from threadline_shared.ratelimit.rules import RuleBook
from threadline_shared.redis import create_redis

SERVICE = "api"


class State(TypedDict):
    settings: ApiSettings
    pool: asyncpg.Pool
    redis: Redis
    limiter: Limiter
    rules: RuleBook


def routes() -> list[BaseRoute]:
    """The api's routes (contract 2.2)."""
    return [
        *users.routes(),
        *login.routes(),
        *conversation_routes.routes(),
        *message_routes.routes(),
        *cancel_routes.routes(),
        *ratelimit_routes.routes(),
    ]


async def clear_author_typing(request: Request, conversation_id: UUID, author_id: UUID) -> None:
    """After a post commits: the author's typing entries in the conversation end (contract 5.3, 7.3)."""
    await clear_typing_after_post(request.state.redis, conversation_id, author_id)


DRAIN_SECONDS = 5.0
"""At shutdown, how long posts still made in the background may take (threadline_api.messages.fastpath)."""


def create_app(
    settings: ApiSettings, *, clock: Clock | None = None, query_observer: QueryLogger | None = None
) -> Starlette:
    """The api. ``clock`` drives sessions and rate limits (tests pass a FakeClock; None = the system clock,
    and the Redis clock for rate limits). ``query_observer`` sees every SQL query of the pool (tests count
    queries per request with it)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        pool = await create_pool(
            settings.database_url,
            min_size=settings.database_pool_min_size,
            max_size=settings.database_pool_max_size,
            query_logger=query_observer,
        )
        redis = create_redis(settings.redis_url, timeout_seconds=settings.rate_limit_redis_timeout_ms / 1000)
        limiter = Limiter(
            redis,
            timeout_ms=settings.rate_limit_redis_timeout_ms,
            enabled=settings.rate_limit_enabled,
            clock=clock,
        )
        rules = RuleBook(pool, settings)
        await rules.reload()
        try:
            async with asyncio.TaskGroup() as tasks:
                reloader = tasks.create_task(rules.run())
                yield {"settings": settings, "pool": pool, "redis": redis, "limiter": limiter, "rules": rules}
                reloader.cancel()
        finally:
            await app.state.posts.drain(DRAIN_SECONDS)
            await redis.aclose()
            await pool.close()

    async def readiness(request: Request) -> list[str]:
        return await database_missing(request.state.pool)

    app = create_service_app(
        settings, service=SERVICE, routes=routes(), lifespan=lifespan, readiness=readiness
    )
    app.state.clock = clock or SystemClock()
    app.state.passwords = Passwords(settings.password_hashing)
    app.state.after_post = clear_author_typing
    app.state.posts = Posts(SERVICE, app.state)
    return app
