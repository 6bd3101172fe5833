"""The assistant worker process: it serves only the operational endpoints (contract 2.5, no OpenAPI); the
worker (:mod:`.worker`) runs in its lifespan, as a task of a TaskGroup the lifespan owns."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import asyncpg
from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request

from threadline_api.assistant.generation import MonotonicClock
from threadline_api.assistant.providers import open_provider
from threadline_api.assistant.worker import Worker
from threadline_shared.app import create_service_app, database_missing
from threadline_shared.db import create_pool
from threadline_shared.settings import Settings

SERVICE = "assistant"
COMMAND_TIMEOUT_SECONDS = 10.0
STOP_SECONDS = 8.0

log = logging.getLogger(__name__)


class AssistantSettings(Settings):
    port: int = Field(default=8003, ge=0, le=65535)


class State(TypedDict):
    settings: AssistantSettings
    pool: asyncpg.Pool
    worker: Worker


def create_app(settings: AssistantSettings, *, clock: MonotonicClock | None = None) -> Starlette:
    """The assistant process. ``clock`` (monotonic seconds; default ``time.monotonic``) times batches and
    deadlines."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        pool = await create_pool(
            settings.database_url,
            min_size=1,
            max_size=settings.assistant_concurrency + 2,
            command_timeout=COMMAND_TIMEOUT_SECONDS,
        )
        try:
            async with open_provider(settings) as provider, asyncio.TaskGroup() as tasks:
                worker = Worker(settings, pool, provider, clock=clock or time.monotonic)
                running = tasks.create_task(worker.run())
                try:
                    yield {"settings": settings, "pool": pool, "worker": worker}
                finally:
                    worker.stop()
                    try:
                        await asyncio.wait_for(asyncio.shield(running), STOP_SECONDS)
                    except TimeoutError:
                        log.warning("assistant worker did not stop within %.0fs; cancelling", STOP_SECONDS)
                        running.cancel()
        finally:
            await pool.close()

    async def readiness(request: Request) -> list[str]:
        return await database_missing(request.state.pool)

    return create_service_app(
        settings, service=SERVICE, routes=[], lifespan=lifespan, readiness=readiness, with_openapi=False
    )
