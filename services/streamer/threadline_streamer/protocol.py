"""The streamer's HTTP protocol: :class:`AbortableHttpToolsProtocol` (uvicorn's httptools protocol with the
streamer's scope extensions), with plain connects set up below ASGI.

A connect the lean path takes (see :mod:`threadline_streamer.fastpath`) is batched from here; once its batch
has accepted it, its response head, ``retry:`` and snapshot go out in one write, the response is marked
started (chunked) in uvicorn's cycle, and the stream's live part (:class:`LiveStream`) runs as a task with
the cycle's own ``send``, exactly as it would after the full application's handler: the same flow control,
write timeout and end of response. Anything else, and any connect the lean path declines, starts the
application's ASGI task as usual.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import cast

from starlette.types import Scope, Send
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle

from threadline_shared.middleware import own_headers
from threadline_shared.server import app_state
from threadline_streamer.connection import CloseReason
from threadline_streamer.fastpath import STREAM_HEADERS, Accepted, Answer, Connects, Job, plain_connect
from threadline_streamer.stream import LiveStream
from threadline_streamer.transport import AbortableHttpToolsProtocol
from threadline_streamer.wire import http_chunk

log = logging.getLogger(__name__)


class StreamerHttpProtocol(AbortableHttpToolsProtocol):
    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        connects: Connects | None = getattr(app_state(self.app), "connects", None)
        scope = cast(Scope, cycle.scope)
        plain: tuple[Job, bytes | None] | None = None
        future: asyncio.Future[Answer] | None = None
        if connects is not None and connects.candidate(scope) and not cycle.disconnected:
            try:
                plain = plain_connect(scope)
                if plain is not None:
                    future = connects.submit(scope, plain[0])
            except Exception:  # a callback's exception would only be logged: let the application answer
                log.exception("connect lean path failed; the application answers")
        if connects is None or plain is None or future is None:
            super()._start_asgi_task(cycle, app)
            return
        started = time.perf_counter()
        future.add_done_callback(partial(self._connected, connects, cycle, app, plain[1], started))

    def _connected(
        self,
        connects: Connects,
        cycle: RequestResponseCycle,
        app: ASGI3Application,
        given_request_id: bytes | None,
        started: float,
        future: asyncio.Future[Answer],
    ) -> None:
        scope = cast(Scope, cycle.scope)
        accepted: Accepted | None = None
        try:
            accepted = connects.outcome(scope, future)
            if accepted is None:
                super()._start_asgi_task(cycle, app)
                return
            connection = accepted.connection
            # A lost connection flags only its newest cycle (maybe a pipelined one): ask the transport too.
            if cycle.disconnected or self.transport.is_closing():
                connects.hub.unsubscribe(connection)
                return
            headers, request_id = own_headers([*STREAM_HEADERS, *accepted.headers], given_request_id)
            head = [STATUS_LINE[200]]
            for name, value in (*cycle.default_headers, *headers):
                head += [name, b": ", value, b"\r\n"]
            if not cycle.keep_alive:
                head.append(b"connection: close\r\n")
            head.append(b"transfer-encoding: chunked\r\n\r\n")
            head.append(http_chunk(accepted.prelude))
            cycle.response_started = cycle.chunked_encoding = True  # as uvicorn's send marks it
            cycle.waiting_for_100_continue = False
            self.transport.write(b"".join(head))
            connection.last_write = time.monotonic()
            write_timeout = connects.app_state.settings.stream_keepalive_seconds
            self.notify_on_disconnect(lambda: connection.close(CloseReason.CLIENT))
            stream = LiveStream(connection, connects.hub, write_timeout)  # counted open from here
            task = self.loop.create_task(stream.run(scope, cast(Send, cycle.send)))
            task.add_done_callback(self._stream_ended)
            self.tasks.add(task)
        except Exception:  # a callback's exception would only be logged: close rather than leave it hanging
            log.exception("connect answer failed; closing the connection")
            if accepted is not None:
                connects.hub.unsubscribe(accepted.connection)
            self.transport.close()
            return
        connects.finished(scope["path"], request_id, started)

    def _stream_ended(self, task: asyncio.Task[None]) -> None:
        """As uvicorn's ``run_asgi`` would: an exception the stream did not handle is logged, and the
        connection closed."""
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("stream failed", exc_info=task.exception())
            self.transport.close()
