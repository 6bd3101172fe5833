"""Request authentication, cookies and CSRF (contract 3.6-3.9), shared by every service.

:func:`authenticate` reads the bearer token (cookie ignored, CSRF not applied) or else the ``SESSION_ID``
cookie, verifies it with :class:`~threadline_shared.sessions.SessionService`, and leaves the principal on
``request.state.principal``; when the request rotated the session, the successor is on
``request.state.rotated`` and :func:`apply_rotation` adds both cookies and ``X-Session-Rotated: 1`` to the
response.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from email.utils import format_datetime

from starlette.requests import Request
from starlette.responses import Response

from threadline_shared.clock import Clock, SystemClock
from threadline_shared.errors import CsrfFailed, Forbidden, MissingSession
from threadline_shared.sessions import IssuedSession, Principal, SessionLookups, SessionService
from threadline_shared.settings import Settings

SESSION_COOKIE = "SESSION_ID"
CSRF_COOKIE = "CSRF-TOKEN"
CSRF_HEADER = "x-csrf-token"
ROTATED_HEADER = "X-Session-Rotated"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_EPOCH_EXPIRES = "Thu, 01 Jan 1970 00:00:00 GMT"


def clock_of(request: Request) -> Clock:
    clock: Clock = getattr(request.app.state, "clock", None) or SystemClock()
    return clock


def session_service(request: Request) -> SessionService:
    settings: Settings = request.app.state.settings
    lookups: SessionLookups | None = getattr(request.app.state, "session_lookups", None)
    return SessionService(request.state.pool, settings, clock_of(request), lookups)


def bearer_token(authorization: bytes) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value (raw bytes), else None."""
    scheme, _, value = authorization.partition(b" ")
    token = value.strip()
    return token.decode("latin-1") if scheme.lower() == b"bearer" and token else None


def credentials(request: Request) -> tuple[str, bool] | None:
    """``(token, via_cookie)``: a bearer token wins and the cookie is ignored; other schemes are ignored."""
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, True
    return None


async def authenticate(request: Request, *, allow_rotation: bool = True) -> Principal:
    """Authenticate a protected request (3.8): 401 or 423, else the principal (after an implicit rotation)."""
    arrived_at = datetime.now(UTC)
    found = credentials(request)
    if found is None:
        raise MissingSession()
    token, via_cookie = found
    verified = await session_service(request).verify(
        token, via_cookie=via_cookie, allow_rotation=allow_rotation, arrived_at=arrived_at
    )
    if isinstance(verified, IssuedSession):
        request.state.rotated = verified
        principal = verified.principal
    else:
        request.state.rotated = None
        principal = verified
    request.state.principal = principal
    return principal


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("global admin role required")


def check_csrf(request: Request, principal: Principal) -> None:
    """Double submit (3.9): on unsafe methods of cookie-authenticated requests, header must equal cookie."""
    settings: Settings = request.app.state.settings
    if not settings.csrf_enabled or not principal.via_cookie or request.method in SAFE_METHODS:
        return
    header = request.headers.get(CSRF_HEADER)
    cookie = request.cookies.get(CSRF_COOKIE)
    if header is None:
        raise CsrfFailed("missing CSRF header token")
    if cookie is None:
        raise CsrfFailed("missing CSRF cookie token")
    if not hmac.compare_digest(header.encode(), cookie.encode()):
        raise CsrfFailed("CSRF token mismatch")


def _cookie(name: str, value: str, settings: Settings, *, max_age: int, expires: str, http_only: bool) -> str:
    samesite = "Strict" if name == CSRF_COOKIE else settings.cookie_samesite.capitalize()
    parts = [f"{name}={value}", "Path=/"]
    if settings.cookie_domain:
        parts.append(f"Domain={settings.cookie_domain}")
    if http_only:
        parts.append("HttpOnly")
    parts += [f"SameSite={samesite}", f"Max-Age={max_age}", f"Expires={expires}"]
    if settings.cookie_secure:
        parts.append("Secure")
    return "; ".join(parts)


def session_cookies(issued: IssuedSession, settings: Settings, now: datetime) -> list[str]:
    """``Set-Cookie`` values for a new session: SESSION_ID (HttpOnly) and CSRF-TOKEN (readable, Strict)."""
    expires_at = issued.principal.expires_at
    max_age = max(0, int((expires_at - now).total_seconds()))
    expires = format_datetime(expires_at, usegmt=True)
    return [
        _cookie(SESSION_COOKIE, issued.token, settings, max_age=max_age, expires=expires, http_only=True),
        _cookie(CSRF_COOKIE, issued.csrf_token, settings, max_age=max_age, expires=expires, http_only=False),
    ]


def cleared_cookies(settings: Settings) -> list[str]:
    """``Set-Cookie`` values that clear both cookies with the attributes they were set with (3.6)."""
    return [
        _cookie(SESSION_COOKIE, "", settings, max_age=0, expires=_EPOCH_EXPIRES, http_only=True),
        _cookie(CSRF_COOKIE, "", settings, max_age=0, expires=_EPOCH_EXPIRES, http_only=False),
    ]


def set_cookies(response: Response, cookies: list[str]) -> None:
    for value in cookies:
        response.headers.append("set-cookie", value)


def apply_rotation(request: Request, response: Response) -> None:
    """After an implicit rotation: both new cookies and ``X-Session-Rotated: 1`` on the response."""
    rotated: IssuedSession | None = getattr(request.state, "rotated", None)
    if rotated is None:
        return
    set_cookies(response, session_cookies(rotated, request.app.state.settings, clock_of(request).now()))
    response.headers[ROTATED_HEADER] = "1"
