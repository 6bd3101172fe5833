"""The service application factory: middleware, problem+json handlers and the operational endpoints
(``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``, contract 2.5) that every process shares.

Each service passes its own routes, its lifespan (which opens its resources and yields them as typed state)
and a readiness probe returning the labels of what is missing (``database``, ``migrations``, ``redis``,
``listener``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Lifespan

from threadline_shared.db import REQUIRED_SCHEMA_VERSION, schema_version
from threadline_shared.dto.ops import HealthResponse, ReadyResponse
from threadline_shared.metrics import metrics_endpoint
from threadline_shared.middleware import BodyLimitMiddleware, CorsMiddleware, RequestContextMiddleware
from threadline_shared.openapi import openapi_document
from threadline_shared.problem import exception_handlers
from threadline_shared.routes import ApiRoute, Doc
from threadline_shared.sessions import SessionLookups
from threadline_shared.settings import Settings

VERSION = "0.1.0"
Readiness = Callable[[Request], Awaitable[list[str]]]


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(content), status_code=status_code, headers=headers, media_type="application/json"
    )


async def database_missing(pool: asyncpg.Pool | None, required: int = REQUIRED_SCHEMA_VERSION) -> list[str]:
    """``[]`` when the database answers and the schema is current, else ``database`` or ``migrations``."""
    if pool is None:
        return ["database"]
    try:
        version = await pool.fetchval("SELECT 1") and await schema_version(pool)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return ["database"]
    return [] if version >= required else ["migrations"]


async def redis_missing(redis: Redis | None) -> list[str]:
    if redis is None:
        return ["redis"]
    try:
        await redis.ping()
    except (RedisError, OSError, TimeoutError):
        return ["redis"]
    return []


def _ops_routes(service: str, readiness: Readiness, with_openapi: bool) -> list[BaseRoute]:
    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        missing = await readiness(request)
        if missing:
            return json_response({"ready": False, "missing": missing}, status_code=503)
        return json_response({"ready": True})

    async def openapi(request: Request) -> Response:
        return json_response(openapi_document(service, VERSION, request.app.routes))

    routes: list[BaseRoute] = [
        ApiRoute("/healthz", healthz, methods=["GET"], doc=Doc("Liveness", responses={200: HealthResponse})),
        ApiRoute(
            "/readyz",
            readyz,
            methods=["GET"],
            doc=Doc("Readiness", responses={200: ReadyResponse, 503: ReadyResponse}),
        ),
        ApiRoute(
            "/metrics",
            metrics_endpoint,
            methods=["GET"],
            doc=Doc("Prometheus metrics", responses={200: None}),
        ),
    ]
    if with_openapi:
        routes.append(ApiRoute("/openapi.json", openapi, methods=["GET"], doc=Doc("This document")))
    return routes


def create_service_app(
    settings: Settings,
    *,
    service: str,
    routes: Sequence[BaseRoute],
    lifespan: Lifespan[Starlette],
    readiness: Readiness,
    with_openapi: bool = True,
) -> Starlette:
    middleware = [
        Middleware(RequestContextMiddleware, service=service),
        Middleware(CorsMiddleware, origins=settings.cors_origins or []),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
    ]
    app = Starlette(
        routes=[*_ops_routes(service, readiness, with_openapi), *routes],
        middleware=middleware,
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    # A path with a trailing slash is an unknown route (404 problem+json, contract 1.7), not a redirect with
    # an empty body to the path without it.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.service = service
    app.state.max_body_bytes = settings.max_body_bytes
    app.state.session_lookups = SessionLookups()  # concurrent requests share one session query
    return app


@contextlib.asynccontextmanager
async def optional_redis(url: str) -> Any:
    """A Redis client that is closed on exit; creating it never connects, so a down Redis is fine here."""
    from threadline_shared.redis import create_redis

    client = create_redis(url)
    try:
        yield client
    finally:
        await client.aclose()
