"""Running a service: logging, the startup schema check, then uvicorn with uvloop and httptools."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import State

from threadline_shared.db import REQUIRED_SCHEMA_VERSION, SchemaTooOld, check_schema
from threadline_shared.logs import configure_logging
from threadline_shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)


YOUNG_GENERATION_THRESHOLD = 50_000
"""Allocations (net) between two collections of the youngest generation (CPython's default is 700; 2,000
from 3.13). A request allocates a few hundred objects and frees nearly all of them, so the default ran a
collection every few requests. Measured on the presence heartbeat (bench/presence_heartbeats.py, 512
clients): 195-214 µs of CPU per heartbeat before, 172-185 µs after."""


def settle_heap(*, young_generation: int | None = None) -> None:
    """Call once startup has built what lives as long as the process: a full collection, then
    ``gc.freeze()`` so that later full passes skip those objects (DESIGN 5). ``young_generation``: a new
    threshold of the youngest generation (:data:`YOUNG_GENERATION_THRESHOLD` where measured), None = keep."""
    gc.collect()
    gc.freeze()
    if young_generation is not None:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_generation, middle, old)


def app_state(app: object) -> State | None:
    """The Starlette state of the application uvicorn runs (``app`` as a protocol holds it), looking through
    the middleware uvicorn may wrap it in (proxy headers, trace logging); None when there is none."""
    for _ in range(4):
        state = getattr(app, "state", None)
        if isinstance(state, State):
            return state
        app = getattr(app, "app", None)
    return None


def load_settings(settings_type: type[Settings], service: str) -> Settings:
    """Read settings once at the composition root; exit with the variable's name on a bad value."""
    try:
        return settings_type.load(service_name=service)
    except SettingsError as exc:
        print(f"threadline-{service}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(
    app: Starlette,
    settings: Settings,
    service: str,
    *,
    required_schema: int = REQUIRED_SCHEMA_VERSION,
    server_class: type[uvicorn.Server] = uvicorn.Server,
    http_protocol: type[asyncio.Protocol] | str = "httptools",
) -> None:
    """Check the schema, then serve ``app`` with uvloop and ``http_protocol`` (uvicorn's httptools protocol
    or a subclass of it) until a signal stops the server."""
    configure_logging(service, settings.log_level)
    try:
        version = asyncio.run(check_schema(settings.database_url, required=required_schema))
    except (SchemaTooOld, ConnectionError) as exc:
        log.error("%s: cannot start: %s", service, exc)
        raise SystemExit(1) from None
    log.info("%s: schema version %d, listening on %s:%d", service, version, settings.host, settings.port)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=http_protocol,
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server_class(config).run()
