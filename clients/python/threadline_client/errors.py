"""The client's exceptions: one hierarchy, rooted at :class:`ThreadlineError`.

Every problem+json answer (contract 1.7) becomes a :class:`ProblemError` subclass chosen by HTTP status;
``status``, ``code``, ``title``, ``detail`` (the problem's ``message``), ``details`` and ``retry_after`` are
attributes. An answer that is not problem+json (a proxy's 502, say) becomes the same classes with
``code=None``::

    ThreadlineError
    ├── ConnectionFailed          the server could not be reached, or the connection broke
    ├── ResyncRequired            the stream's history is gone (contract 6.6): reload state over REST
    ├── UnexpectedResponse        a success answer that does not fit the contract (not a Threadline server?)
    └── ProblemError              an HTTP error answer
        ├── BadRequest            400
        ├── Unauthorized          401 (missing, invalid or expired session; wrong credentials)
        ├── Forbidden             403 (not a participant, role too low, CSRF)
        ├── NotFound              404
        ├── Conflict              409
        ├── Gone                  410
        ├── PayloadTooLarge       413
        ├── UnsupportedMediaType  415
        ├── ValidationFailed      422
        ├── AccountDisabled       423
        ├── RateLimited           429 (``retry_after`` in seconds)
        └── ServerError           5xx
"""

from __future__ import annotations

import json
from typing import Any

import httpx

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ThreadlineError(Exception):
    """Base of every error this client raises."""

    @property
    def summary(self) -> str:
        """One line for a person: what went wrong and why."""
        return str(self)


class ConnectionFailed(ThreadlineError):
    """The server could not be reached, or the connection broke before an answer arrived."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason

    @property
    def summary(self) -> str:
        return f"Connection failed: cannot reach {self.url} ({self.reason})"


class ResyncRequired(ThreadlineError):
    """The stream cannot replay from the given cursor (contract 6.6); reload state over REST, then open a new
    stream without a cursor."""

    def __init__(self, message: str, last_event_id: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.last_event_id = last_event_id

    @property
    def summary(self) -> str:
        return f"Resync required: {self.message}"


class UnexpectedResponse(ThreadlineError):
    """A success answer whose body does not fit the DTO the contract promises."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"unexpected answer from {url}: {reason}")
        self.url = url
        self.reason = reason

    @property
    def summary(self) -> str:
        return f"Unexpected answer from {self.url} (is it a Threadline server?): {self.reason}"


class ProblemError(ThreadlineError):
    """An HTTP error answer, with the fields of its problem+json body (contract 1.7)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.details = details or {}
        self.retry_after = retry_after

    @property
    def summary(self) -> str:
        return f"{self.title}: {self.detail}" if self.detail else self.title

    @property
    def field_errors(self) -> list[dict[str, str]]:
        """``details.errors`` of a 400 or 422: ``[{"field": ..., "message": ...}]``."""
        errors = self.details.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


class BadRequest(ProblemError):
    """400."""


class Unauthorized(ProblemError):
    """401: no session, an unknown, revoked or expired one, or wrong login credentials."""


class Forbidden(ProblemError):
    """403: not a participant (or unknown conversation), role too low, global admin missing, or CSRF."""


class NotFound(ProblemError):
    """404."""


class Conflict(ProblemError):
    """409."""


class Gone(ProblemError):
    """410: the invite was revoked, expired, or used by another user."""


class PayloadTooLarge(ProblemError):
    """413."""


class UnsupportedMediaType(ProblemError):
    """415."""


class ValidationFailed(ProblemError):
    """422: the body does not fit the request DTO (``field_errors`` says where)."""


class AccountDisabled(ProblemError):
    """423."""


class RateLimited(ProblemError):
    """429: ``retry_after`` holds the ``Retry-After`` seconds."""


class ServerError(ProblemError):
    """5xx: the service failed, or a proxy could not reach it."""


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    423: AccountDisabled,
    429: RateLimited,
}


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "").strip()
    return int(value) if value.isdigit() else None


def problem_from_response(response: httpx.Response) -> ProblemError:
    """The exception for an error answer whose body has been read."""
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ProblemError)
    title = response.reason_phrase or f"HTTP {status}"
    body: Any = None
    if response.headers.get("content-type", "").startswith(PROBLEM_MEDIA_TYPE):
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        text = response.text.strip().splitlines()
        return cls(status, title, text[0][:200] if text else "", retry_after=_retry_after(response))
    details = body.get("details")
    return cls(
        status,
        str(body.get("title") or title),
        str(body.get("message") or body.get("detail") or ""),
        code=str(body["code"]) if body.get("code") else None,
        details=details if isinstance(details, dict) else None,
        retry_after=_retry_after(response),
    )
