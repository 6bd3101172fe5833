"""Rendering errors as problem+json (contract 1.7), for our errors and the framework's.

:func:`exception_handlers` is the one mapping every service installs: :class:`ApiError` renders itself;
Starlette's ``HTTPException`` (unknown route, wrong method) becomes 404 / 405 with ``Allow``. Anything else
is logged and answered with a generic 500 by :class:`threadline_shared.middleware.RequestContextMiddleware`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from threadline_shared.errors import ApiError, MethodNotAllowed, NotFound

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_response(error: ApiError, extra_headers: Mapping[str, str] | None = None) -> Response:
    headers = {"Cache-Control": "no-store", **error.headers, **(extra_headers or {})}
    return Response(
        orjson.dumps(error.problem()),
        status_code=error.status,
        headers=headers,
        media_type=PROBLEM_CONTENT_TYPE,
    )


def problem_bytes(error: ApiError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw headers and body of a problem, for pure ASGI middleware that answers before routing."""
    body = orjson.dumps(error.problem())
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
    ]
    return error.status, headers, body


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_response(exc)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: ApiError
    if exc.status_code == 404:
        error = NotFound("route not found")
    elif exc.status_code == 405:
        error = MethodNotAllowed(
            "method not allowed", headers={"Allow": (exc.headers or {}).get("Allow", "")}
        )
    else:
        error = ApiError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
    return problem_response(error)


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Any]]:
    return {ApiError: _api_error, HTTPException: _http_exception}
