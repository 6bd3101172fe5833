"""The HTTP session under every route method: one base URL, authentication, CSRF, errors.

Two ways to authenticate (contract 3.7, 3.9):

- **bearer** (default): ``Authorization: Bearer <session token>``, from ``token=`` or the last login. No CSRF
  check applies.
- **cookies** (``use_cookies=True``): the ``SESSION_ID`` and ``CSRF-TOKEN`` cookies set by login, refresh and
  implicit rotation are kept in the cookie jar; every unsafe request echoes the current ``CSRF-TOKEN`` cookie
  in ``X-CSRF-TOKEN`` (double submit), so rotation is followed without extra work.

Error answers become :mod:`threadline_client.errors` exceptions; transport failures :class:`ConnectionFailed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from threadline_client.errors import ConnectionFailed, problem_from_response

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_SECONDS = 30.0
CSRF_COOKIE = "CSRF-TOKEN"
CSRF_HEADER = "X-CSRF-TOKEN"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Params = Mapping[str, str | int | None]


class HttpSession:
    """An ``httpx.AsyncClient`` on the edge's base URL, with the caller's credentials."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        use_cookies: bool = False,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.use_cookies = use_cookies
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self.http.aclose()

    @property
    def csrf_token(self) -> str | None:
        """The current ``CSRF-TOKEN`` cookie (cookie mode only)."""
        return self.http.cookies.get(CSRF_COOKIE) if self.use_cookies else None

    def auth_headers(self, method: str = "GET") -> dict[str, str]:
        """Headers that authenticate one request: the bearer token, or the CSRF echo of cookie mode."""
        if self.use_cookies:
            csrf = self.csrf_token
            if method.upper() not in _SAFE_METHODS and csrf:
                return {CSRF_HEADER: csrf}
            return {}
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def forget_credentials(self) -> None:
        self.token = None
        self.http.cookies.clear()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Params | None = None,
    ) -> httpx.Response:
        """Send one request; an answer of 400 or more raises its :class:`ProblemError`."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self.http.request(
                method,
                path,
                json=dict(json) if json is not None else None,
                params=query,
                headers=self.auth_headers(method),
            )
        except httpx.TransportError as exc:
            raise ConnectionFailed(self.base_url, describe_transport_error(exc)) from exc
        if response.status_code >= 400:
            raise problem_from_response(response)
        return response


def describe_transport_error(exc: httpx.TransportError) -> str:
    """A short reason for a person: ``connection refused``, ``timed out``, ..."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def without_none(**fields: Any) -> dict[str, Any]:
    """A JSON body of the given fields, leaving out those not given (contract 1.1: null = not given)."""
    return {k: v for k, v in fields.items() if v is not None}
