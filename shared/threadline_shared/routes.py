"""Declaring routes: :class:`ApiRoute` is a Starlette ``Route`` that carries its OpenAPI description and
runs the checks of contract 1.7 that come before a route's own code, in that order: (routing: 404, 405),
the ``Content-Length`` body limit (413), authentication on protected routes (401, 423, with implicit
session rotation), CSRF (403), the HTTP rate limit (429). The route's handler then parses its input (400,
415, 422) and applies its own checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline_shared.auth import apply_rotation, authenticate, check_csrf
from threadline_shared.errors import ApiError, PayloadTooLarge
from threadline_shared.problem import problem_response
from threadline_shared.ratelimit.http import check_http_limit

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Doc:
    """What ``/openapi.json`` says about a route."""

    summary: str
    request: type[BaseModel] | None = None
    responses: Mapping[int, type[BaseModel] | None] = field(default_factory=lambda: {200: None})
    query: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    auth: bool = False
    csrf: bool = False
    tags: Sequence[str] = ()


def rate_limit_headers(request: Request) -> dict[str, str]:
    """Headers of the rate-limit decision made for this request, if any (contract 8.6)."""
    headers: dict[str, str] = getattr(request.state, "rate_limit_headers", None) or {}
    return headers


def _check_declared_length(request: Request) -> None:
    declared = request.headers.get("content-length")
    limit: int | None = getattr(request.app.state, "max_body_bytes", None)
    if declared is not None and limit is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge()


class ApiRoute(Route):
    def __init__(
        self, path: str, endpoint: Handler, *, methods: Sequence[str], doc: Doc, name: str | None = None
    ) -> None:
        async def guarded(request: Request) -> Response:
            _check_declared_length(request)
            principal = None
            if doc.auth:
                principal = await authenticate(request)
            try:
                if doc.csrf and principal is not None:
                    check_csrf(request, principal)
                await check_http_limit(request, principal)
                response = await endpoint(request)
            except ApiError as error:
                # A denial's own rate-limit headers win over those of an earlier, allowed bucket.
                error.headers = {**rate_limit_headers(request), **error.headers}
                if getattr(request.state, "rotated", None) is None:
                    raise
                # This request rotated the session, and the old token no longer works: the error response
                # hands over the new one too (3.5), or the browser would be logged out.
                response = problem_response(error)
            else:
                for name, value in rate_limit_headers(request).items():
                    response.headers.setdefault(name, value)
            if doc.auth:
                apply_rotation(request, response)
            return response

        super().__init__(path, guarded, methods=list(methods), name=name or endpoint.__name__)
        self.doc = doc


def api_route(path: str, methods: Sequence[str], doc: Doc) -> Callable[[Handler], ApiRoute]:
    """Decorator form: ``@api_route("/api/x", ["GET"], Doc("..."))`` turns a handler into an ApiRoute."""

    def wrap(endpoint: Handler) -> ApiRoute:
        return ApiRoute(path, endpoint, methods=methods, doc=doc)

    return wrap
