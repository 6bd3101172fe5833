"""The assistant worker process: it serves only the operational endpoints; jobs run in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import asyncpg
from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request

from threadline_shared.app import create_service_app, database_missing
from threadline_shared.db import create_pool
from threadline_shared.settings import Settings

SERVICE = "assistant"


class AssistantSettings(Settings):
    port: int = Field(default=8003, ge=0, le=65535)


class State(TypedDict):
    settings: AssistantSettings
    pool: asyncpg.Pool


def create_app(settings: AssistantSettings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        pool = await create_pool(
            settings.database_url, min_size=1, max_size=settings.assistant_concurrency + 2
        )
        try:
            yield {"settings": settings, "pool": pool}
        finally:
            await pool.close()

    async def readiness(request: Request) -> list[str]:
        return await database_missing(request.state.pool)

    return create_service_app(
        settings, service=SERVICE, routes=[], lifespan=lifespan, readiness=readiness, with_openapi=False
    )
