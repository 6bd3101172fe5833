"""What the services' lean paths share: the test for a plain request, and the writer of a response made below
ASGI, in uvicorn's httptools protocol (presence's heartbeat, the api's posts).

A lean path takes only the plain case and answers it exactly as the full application would; everything else
goes to the application, which gives the one canonical answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any, ClassVar, Protocol, cast

from starlette.types import Scope
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from threadline_shared.auth import bearer_token
from threadline_shared.middleware import Headers, own_headers
from threadline_shared.params import is_json
from threadline_shared.server import app_state

log = logging.getLogger(__name__)


def plain_request(scope: Scope, max_body_bytes: int) -> tuple[str, bytes | None] | None:
    """``(bearer token, X-Request-ID)`` when the request's headers allow a lean path, else None. A body over
    ``max_body_bytes`` or without a JSON ``Content-Type`` (415), a cookie or no bearer token, an ``Origin``
    (CORS), chunked transfer, a repeated header and anything unusual go the full way."""
    token: str | None = None
    request_id: bytes | None = None
    length = 0
    json_body = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            if token is not None:
                return None
            token = bearer_token(value)
            if token is None:
                return None
        elif name == b"content-length":
            if not value.isdigit() or int(value) > max_body_bytes:
                return None
            length = int(value)
        elif name == b"content-type":
            if json_body or not is_json(value.decode("latin-1")):
                return None
            json_body = True
        elif name in (b"origin", b"transfer-encoding"):
            return None
        elif name == b"x-request-id":
            if request_id is not None:
                return None
            request_id = bytes(value)
    if token is None or (length and not json_body):
        return None
    return token, request_id


def write_response(
    protocol: HttpToolsProtocol, cycle: RequestResponseCycle, status: int, headers: Headers, body: bytes = b""
) -> None:
    """Write a whole response and complete the cycle, as uvicorn's ``send`` does. ``headers`` come after
    uvicorn's defaults (``server``, ``date``); a body's ``content-length`` must be among them."""
    head = [STATUS_LINE[status]]
    for name, value in (*cycle.default_headers, *headers):
        head += [name, b": ", value, b"\r\n"]
    if not cycle.keep_alive:
        head.append(b"connection: close\r\n")
    head.append(b"\r\n")
    head.append(body)
    cycle.response_started = cycle.response_complete = True
    # A lost connection flags only its newest cycle (maybe a pipelined one): ask the transport too.
    if cycle.disconnected or protocol.transport.is_closing():
        return
    # Unlike uvicorn's send this does not wait while writing is paused: the response is small, and the next
    # request on the connection is started only once this one is answered.
    protocol.transport.write(b"".join(head))
    cycle.message_event.set()
    if not cycle.keep_alive:
        protocol.transport.close()
    cycle.on_response()


Response = tuple[int, Headers, bytes]
"""A lean path's answer: status, headers (before those the request middleware adds), body."""


class LeanPath(Protocol):
    """What :class:`LeanHttpProtocol` serves: a service's lean path for one kind of request."""

    def candidate(self, scope: Scope) -> bool:
        """Whether the lean path may look at the request (the rest always goes the full way)."""

    def begin(self, scope: Scope, body: bytes) -> tuple[asyncio.Future[Any], bytes | None] | None:
        """Start the request whose whole body is ``body``: its future and the client's ``X-Request-ID``, or
        None to hand it to the application at once."""

    def respond(self, scope: Scope, future: asyncio.Future[Any]) -> Response | None:
        """The response from the done future, or None to hand the request to the application."""

    def finished(self, scope: Scope, response: Response, request_id: bytes, started: float) -> None:
        """Count and log a request answered here, as the application's middleware would."""


class LeanHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the requests of a lean path answered below ASGI.

    A request the lean path takes (its ``candidate`` and ``begin``), whose whole body came with its head, is
    answered from the future's callback: the response is written straight to the socket, without a task per
    request, uvicorn's ``send``/``receive`` or Starlette. Everything else, and any request the lean path
    declines, starts the application's ASGI task as usual (the body is still in the cycle, unread).

    The request keeps uvicorn's per-connection order: the response completes its cycle (``on_response``),
    which starts a pipelined request or arms the keep-alive timer, exactly as uvicorn's own ``send`` does.
    Subclasses name the attribute of the application's state that holds their lean path.
    """

    lean_path_attribute: ClassVar[str]

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        lean: LeanPath | None = getattr(app_state(self.app), self.lean_path_attribute, None)
        if lean is None or not lean.candidate(cast(Scope, cycle.scope)):
            super()._start_asgi_task(cycle, app)
        else:  # once the parser is through the data at hand, which normally holds the body
            self.loop.call_soon(self._lean, lean, cycle, app)

    def _lean(self, lean: LeanPath, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        started = time.perf_counter()
        begun = None
        try:
            if not cycle.more_body and not cycle.disconnected:
                begun = lean.begin(cast(Scope, cycle.scope), bytes(cycle.body))
        except Exception:  # a callback's exception would only be logged: let the application answer
            log.exception("lean path failed; the application answers")
        if begun is None:
            super()._start_asgi_task(cycle, app)
            return
        future, given_request_id = begun
        future.add_done_callback(partial(self._answered, lean, cycle, app, given_request_id, started))

    def _answered(
        self,
        lean: LeanPath,
        cycle: RequestResponseCycle,
        app: ASGI3Application,
        given_request_id: bytes | None,
        started: float,
        future: asyncio.Future[Any],
    ) -> None:
        scope = cast(Scope, cycle.scope)
        try:
            response = lean.respond(scope, future)
            if response is None:
                super()._start_asgi_task(cycle, app)
                return
            status, extra, body = response
            headers, request_id = own_headers(extra, given_request_id)
            write_response(self, cycle, status, headers, body)
        except Exception:  # a callback's exception would only be logged: close rather than leave it hanging
            log.exception("lean path answer failed; closing the connection")
            self.transport.close()
            return
        lean.finished(scope, response, request_id, started)
