"""The presence service's HTTP protocol: uvicorn's httptools protocol, with heartbeats answered below ASGI.

A plain heartbeat (see :mod:`threadline_presence.fastpath`) whose whole body came with its head is answered
from here: the same batch, rules and answer as the ASGI lean path, written straight to the socket, without
the ASGI task's trip through uvicorn's ``send``/``receive`` and Starlette. Everything else, and any request
the lean path declines, runs through the application as usual (the body is still in the cycle, unread).

The request keeps uvicorn's per-connection order: the response completes its cycle (``on_response``), which
starts a pipelined request or arms the keep-alive timer, exactly as uvicorn's own ``send`` does.

Measured with bench/presence_heartbeats.py (64 clients, one process): see the figures in the README.
"""

from __future__ import annotations

import time
from typing import cast

from starlette.types import Scope
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from threadline_presence.fastpath import (
    MAX_BODY_BYTES,
    Heartbeats,
    parse_status,
    plain_request,
    response_headers,
)
from threadline_shared.dto.enums import PresenceStatus


class PresenceHttpProtocol(HttpToolsProtocol):
    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        heartbeats: Heartbeats | None = getattr(getattr(self.app, "state", None), "heartbeats", None)
        if heartbeats is None or not heartbeats.candidate(cast(Scope, cycle.scope)):
            super()._start_asgi_task(cycle, app)
            return
        task = self.loop.create_task(self._heartbeat(heartbeats, cycle, app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _heartbeat(
        self, heartbeats: Heartbeats, cycle: RequestResponseCycle, app: ASGI3Application
    ) -> None:
        started = time.perf_counter()
        scope = cast(Scope, cycle.scope)
        plain = plain_request(scope)
        status: PresenceStatus | None = None
        if plain is not None and not cycle.more_body and len(cycle.body) <= MAX_BODY_BYTES:
            status = parse_status(bytes(cycle.body))
        if plain is None or status is None:
            await cycle.run_asgi(app)
            return
        rate_limit = await heartbeats.answer(scope, plain[0], status)
        if rate_limit is None:
            await cycle.run_asgi(app)
            return
        headers, request_id = response_headers(rate_limit, plain[1])
        head = [STATUS_LINE[204]]
        for name, value in (*cycle.default_headers, *headers):
            head += [name, b": ", value, b"\r\n"]
        if not cycle.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        if self.flow.write_paused and not cycle.disconnected:
            await self.flow.drain()
        cycle.response_started = cycle.response_complete = True
        if not cycle.disconnected:
            self.transport.write(b"".join(head))
            cycle.message_event.set()
            if not cycle.keep_alive:
                self.transport.close()
            cycle.on_response()
        heartbeats.finished(request_id, started)
