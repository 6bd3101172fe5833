"""Pure ASGI middleware every HTTP service installs (outermost first):

- :class:`RequestContextMiddleware`: ``X-Request-ID`` (echoed when valid, else a new UUID), the security
  headers of contract 1.8, request metrics, one structured access-log line per request, and the generic
  500 problem for unexpected exceptions (answered here so that it carries the headers too);
- :class:`CorsMiddleware`: exact-origin CORS with credentials (contract 2.4);
- :class:`BodyLimitMiddleware`: counts body bytes as they are read and raises 413 past the limit. The
  ``Content-Length`` fast path runs in :func:`threadline_shared.routes.api_route` after routing, so that
  404/405 win over 413 as contract 1.7 orders them.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline_shared.db import database_unreachable
from threadline_shared.errors import DatabaseUnavailable, InternalError, InvalidRequest, PayloadTooLarge
from threadline_shared.logs import request_id_var
from threadline_shared.metrics import HTTP_DURATION, HTTP_REQUESTS
from threadline_shared.problem import problem_bytes

access_log = logging.getLogger("threadline.access")

VALID_REQUEST_ID = re.compile(rb"^[\x21-\x7e]{1,128}$")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes: logged at debug only
CORS_ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_ALLOW_HEADERS = b"Content-Type, Authorization, X-CSRF-TOKEN, X-Request-ID, Last-Event-ID"
CORS_EXPOSE_HEADERS = (
    b"X-Session-Rotated, X-Request-ID, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
    b"X-RateLimit-Profile, Retry-After"
)


def new_request_id() -> bytes:
    """A new random (version 4) UUID for a request that brought no id (contract 2.2). Request ids need to be
    unique, not secret, so the bits come from ``random`` rather than ``os.urandom``: a syscall and a UUID
    object per request measured about 3% of a presence heartbeat's CPU."""
    value = (random.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC << 60) | (0x8 << 60)
    text = b"%032x" % value
    return b"%b-%b-%b-%b-%b" % (text[:8], text[8:12], text[12:16], text[16:20], text[20:])


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def route_label(scope: Scope) -> str:
    """The matched route's path template, for metrics; ``unmatched`` keeps label cardinality bounded."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


Headers = list[tuple[bytes, bytes]]


def own_headers(extra: Headers, given_request_id: bytes | None) -> tuple[Headers, bytes]:
    """For a response made below this middleware (a service's lean path): ``extra``, then the headers this
    middleware adds (``X-Request-ID``, the client's when valid, and the security headers), and the id."""
    valid = given_request_id is not None and VALID_REQUEST_ID.match(given_request_id)
    request_id = given_request_id if valid and given_request_id else new_request_id()
    return [*extra, (b"x-request-id", request_id), *SECURITY_HEADERS], request_id


class RequestRecord:
    """Counts and logs a request answered below this middleware exactly as the middleware would (the
    metrics' labels bound once: one route, method and status)."""

    def __init__(self, service: str, method: str, route: str, status: int) -> None:
        self.method = method
        self.status = status
        self._requests = HTTP_REQUESTS.labels(service, method, route, str(status))
        self._duration = HTTP_DURATION.labels(service, method, route)

    def finished(self, path: str, request_id: bytes, started: float) -> None:
        elapsed = time.perf_counter() - started
        self._requests.inc()
        self._duration.observe(elapsed)
        if access_log.isEnabledFor(logging.INFO):
            token = request_id_var.set(request_id.decode())
            duration_ms = round(elapsed * 1000, 2)
            extra = {"method": self.method, "path": path, "status": self.status, "duration_ms": duration_ms}
            access_log.info("request", extra=extra)
            request_id_var.reset(token)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, b"x-request-id")
        request_id = given if given and VALID_REQUEST_ID.match(given) else new_request_id()
        token = request_id_var.set(request_id.decode())
        status = 500
        response_started = False
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id))
                headers.extend(SECURITY_HEADERS)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            # Unexpected failures are answered here, inside our headers, with nothing revealed; PostgreSQL
            # out of reach is a 503 (contract 1.7), whichever query met it.
            unreachable = database_unreachable(exc)
            if unreachable:
                access_log.warning("database unavailable: %r", exc)
            else:
                access_log.exception("unhandled error")
            if response_started:
                raise
            error = DatabaseUnavailable() if unreachable else InternalError()
            error_status, error_headers, body = problem_bytes(error)
            await send_with_headers(
                {"type": "http.response.start", "status": error_status, "headers": error_headers}
            )
            await send_with_headers({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - started
            route = route_label(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            HTTP_DURATION.labels(self.service, method, route).observe(elapsed)
            access_log.log(
                logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO,
                "request",
                extra={"method": method, "path": scope["path"], "status": status,
                       "duration_ms": round(elapsed * 1000, 2)},
            )  # fmt: skip
            request_id_var.reset(token)


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(origin.encode() for origin in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = header(scope, b"origin") if scope["type"] == "http" else None
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = origin in self.origins
        is_preflight = (
            scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method") is not None
        )
        if is_preflight:
            await self._preflight(origin, allowed, send)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"access-control-allow-origin", origin),
                    (b"access-control-allow-credentials", b"true"),
                    (b"access-control-expose-headers", CORS_EXPOSE_HEADERS),
                    (b"vary", b"Origin"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    async def _preflight(origin: bytes, allowed: bool, send: Send) -> None:
        if not allowed:
            status, headers, body = problem_bytes(InvalidRequest("CORS origin not allowed"))
        else:
            status, body = 204, b""
            headers = [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-credentials", b"true"),
                (b"access-control-allow-methods", CORS_ALLOW_METHODS),
                (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
                (b"access-control-max-age", b"600"),
                (b"vary", b"Origin"),
            ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge()
            return message

        await self.app(scope, counting_receive, send)
