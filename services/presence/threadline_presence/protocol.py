"""The presence service's HTTP protocol: uvicorn's httptools protocol, with heartbeats answered below ASGI.

A plain heartbeat (see :mod:`threadline_presence.fastpath`) whose whole body came with its head is answered
from here: the same batch, rules and answer as the ASGI lean path, written straight to the socket from the
batch's callback, without a task per request, uvicorn's ``send``/``receive`` or Starlette. Everything else,
and any request the lean path declines, starts the application's ASGI task as usual (the body is still in
the cycle, unread).

The request keeps uvicorn's per-connection order: the response completes its cycle (``on_response``), which
starts a pipelined request or arms the keep-alive timer, exactly as uvicorn's own ``send`` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import cast

from starlette.types import Scope
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from threadline_presence.fastpath import (
    MAX_BODY_BYTES,
    Answer,
    Heartbeats,
    parse_status,
)
from threadline_shared.leanpath import plain_request, write_response
from threadline_shared.middleware import own_headers
from threadline_shared.server import app_state

log = logging.getLogger(__name__)


class PresenceHttpProtocol(HttpToolsProtocol):
    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        heartbeats: Heartbeats | None = getattr(app_state(self.app), "heartbeats", None)
        if heartbeats is None or not heartbeats.candidate(cast(Scope, cycle.scope)):
            super()._start_asgi_task(cycle, app)
        else:  # once the parser is through the data at hand, which normally holds the body
            self.loop.call_soon(self._heartbeat, heartbeats, cycle, app)

    def _heartbeat(self, heartbeats: Heartbeats, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        started = time.perf_counter()
        scope = cast(Scope, cycle.scope)
        future: asyncio.Future[Answer] | None = None
        try:
            plain = plain_request(scope, MAX_BODY_BYTES)
            given_request_id = plain[1] if plain is not None else None
            status = None
            if plain is not None and not cycle.more_body and len(cycle.body) <= MAX_BODY_BYTES:
                status = parse_status(bytes(cycle.body))
            if plain is not None and status is not None and not cycle.disconnected:
                future = heartbeats.submit(scope, plain[0], status)
        except Exception:  # a callback's exception would only be logged: let the application answer
            log.exception("heartbeat lean path failed; the application answers")
        if future is None:
            super()._start_asgi_task(cycle, app)
            return
        future.add_done_callback(partial(self._answered, heartbeats, cycle, app, given_request_id, started))

    def _answered(
        self,
        heartbeats: Heartbeats,
        cycle: RequestResponseCycle,
        app: ASGI3Application,
        given_request_id: bytes | None,
        started: float,
        future: asyncio.Future[Answer],
    ) -> None:
        try:
            rate_limit = heartbeats.outcome(cast(Scope, cycle.scope), future)
            if rate_limit is None:
                super()._start_asgi_task(cycle, app)
                return
            headers, request_id = own_headers(rate_limit, given_request_id)
            write_response(self, cycle, 204, headers)
        except Exception:  # a callback's exception would only be logged: close rather than leave it hanging
            log.exception("heartbeat answer failed; closing the connection")
            self.transport.close()
            return
        heartbeats.finished(request_id, started)
