"""What the services' lean paths share: the test for a plain request, and the writer of a response made below
ASGI, in uvicorn's httptools protocol (presence's heartbeat, the api's posts).

A lean path takes only the plain case and answers it exactly as the full application would; everything else
goes to the application, which gives the one canonical answer.
"""

from __future__ import annotations

from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from threadline_shared.auth import bearer_token
from threadline_shared.middleware import Headers
from threadline_shared.params import is_json


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
