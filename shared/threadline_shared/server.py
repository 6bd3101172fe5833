"""Running a service: logging, the startup schema check, then uvicorn with uvloop and httptools."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import State

from threadline_shared.db import REQUIRED_SCHEMA_VERSION, SchemaTooOld, check_schema
from threadline_shared.logs import configure_logging
from threadline_shared.metrics import GC_PAUSES
from threadline_shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)


YOUNG_GENERATION_THRESHOLD = 50_000
"""Allocations (net) between two collections of the youngest generation (CPython's default is 700; 2,000
from 3.13). A request allocates a few hundred objects and frees nearly all of them, so the default ran a
collection every few requests. Measured on the presence heartbeat (bench/presence_heartbeats.py, 512
clients): 195-214 µs of CPU per heartbeat before, 172-185 µs after."""


def settle_heap(*, young_generation: int | None = None) -> None:
    """Call once startup has built what lives as long as the process: a full collection, then
    ``gc.freeze()`` so that later full passes skip those objects (DESIGN 5); from then on every collection's
    pause is observed in ``threadline_gc_pause_seconds``. ``young_generation``: a new
    threshold of the youngest generation (:data:`YOUNG_GENERATION_THRESHOLD` where measured), None = keep."""
    gc.collect()
    gc.freeze()
    if _time_collection not in gc.callbacks:
        gc.callbacks.append(_time_collection)
    if young_generation is not None:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_generation, middle, old)


NO_AUTOMATIC_FULL_COLLECTION = 2**31 - 1
"""The oldest generation's threshold while a :class:`HeapKeeper` runs: the number of middle-generation
collections (CPython's default: 10) after which CPython would run a full one, out of reach."""
_keepers_running = 0  # keepers running in this process (several in one test process)
_oldest_threshold = 10  # the oldest generation's threshold before the first of them started


class HeapKeeper:
    """Keeps a process's full garbage collections off the request path (the streamer's, DESIGN 5).

    A full collection walks every tracked object, and a streamer holds tens per open connection (measured:
    ~80 per stream; one gen-2 pause of 302 ms with 10,000 streams open, which was the fan-out's p99 at
    20,000 deliveries/s). CPython runs one whenever the long-lived objects have grown by a quarter. Instead,
    every :attr:`freeze_seconds` the young generations are collected and everything left is frozen
    (``gc.freeze()``: full passes skip it), so automatic full passes only see what is newer than that.

    Cyclic garbage that was frozen (a closed stream leaves ~40 objects) is reclaimed by one full collection
    after :attr:`reclaim_seconds`, or sooner once more units of work ended (``ended()``: streams closed
    since the start) since the last one than are live now (``live()``), and at least :attr:`minimum`: the
    frozen garbage then stays below what the live objects take, and a burst of new connections, which leaves
    no garbage, brings no pause. Other cyclic garbage that reached the old generation before it died (an
    exception of a request that lived through two young collections) waits for the timed reclaim. A rule on
    the frozen heap's growth was tried and dropped: connections opened after startup grew it eightfold and
    brought a 689 ms pause into the fan-out that followed.

    While it runs, CPython runs no full collection of its own (the oldest generation's threshold is set out of
    reach; restored when it stops): freezing every few seconds did not keep them away during a burst of new
    connections, whose objects are neither young nor frozen yet. Measured opening 15,000 streams
    (bench/streamer_fanout.py): 10 automatic full collections, 1,085 ms of pauses in 9 s, each a stall of
    every live stream; without them the streamer's CPU per connect fell from 519 to 262 µs and the connect
    rate rose from 1,640 to 2,930/s."""

    def __init__(
        self,
        *,
        freeze_seconds: float = 5.0,
        reclaim_seconds: float = 600.0,
        ended: Callable[[], int] = lambda: 0,
        live: Callable[[], int] = lambda: 0,
        minimum: int = 1000,
    ) -> None:
        self.freeze_seconds = freeze_seconds
        self.reclaim_seconds = reclaim_seconds
        self.ended = ended
        self.live = live
        self.minimum = minimum

    async def run(self) -> None:
        global _keepers_running, _oldest_threshold
        if not _keepers_running:
            _oldest_threshold = gc.get_threshold()[2]
        _keepers_running += 1
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, NO_AUTOMATIC_FULL_COLLECTION)
        try:
            await self._keep()
        finally:
            _keepers_running -= 1
            if not _keepers_running:  # the last keeper to stop gives CPython its full collections back
                young, middle, _ = gc.get_threshold()
                gc.set_threshold(young, middle, _oldest_threshold)

    async def _keep(self) -> None:
        reclaimed, ended = time.monotonic(), self.ended()
        while True:
            await asyncio.sleep(self.freeze_seconds)
            gc.collect(1)
            due = time.monotonic() - reclaimed >= self.reclaim_seconds
            if due or self.ended() - ended > max(self.minimum, self.live()):
                reclaimed, ended = time.monotonic(), self.ended()
                gc.unfreeze()
                gc.collect()
            gc.freeze()


def app_state(app: object) -> State | None:
    """The Starlette state of the application uvicorn runs (``app`` as a protocol holds it), looking through
    the middleware uvicorn may wrap it in (proxy headers, trace logging); None when there is none."""
    for _ in range(4):
        state = getattr(app, "state", None)
        if isinstance(state, State):
            return state
        app = getattr(app, "app", None)
    return None


_collection_started = 0.0
# Made here, once: ``labels()`` takes the metric's lock and allocates, and a collection that started while
# this thread held that lock would deadlock in the callback.
_PAUSES_BY_GENERATION = [GC_PAUSES.labels(str(generation)) for generation in range(3)]


def _time_collection(phase: str, info: dict[str, int]) -> None:
    """Observes each collection's pause (``threadline_gc_pause_seconds``): a long-lived process's full
    collections grow with what it holds (a streamer's connections) and show up as latency."""
    global _collection_started
    if phase == "start":
        _collection_started = time.perf_counter()
    else:
        _PAUSES_BY_GENERATION[info["generation"]].observe(time.perf_counter() - _collection_started)


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
