"""The error model: one base class, one subclass per client-visible error (contract 1.7).

    ApiError
     ├── InvalidRequest                400 invalid_request
     ├── CancelRoleInvalid             400 RGP.V1.CANCEL_ROLE
     ├── MissingSession                401 RGP.AUTH.MISSING_SESSION
     ├── InvalidSession                401 RGP.AUTH.INVALID_SESSION
     ├── SessionExpired                401 RGP.AUTH.EXPIRED
     ├── InvalidCredentials            401 RGP.AUTH.INVALID_CREDENTIALS
     ├── CsrfFailed                    403 RGP.AUTH.CSRF
     ├── Forbidden                     403 RGP.RBAC.FORBIDDEN
     ├── NotFound                      404 RGP.NOT_FOUND
     ├── MethodNotAllowed              405 method_not_allowed
     ├── Conflict                      409 RGP.CONFLICT
     ├── Gone                          410 RGP.GONE
     ├── PayloadTooLarge               413 payload_too_large
     ├── UnsupportedMediaType          415 unsupported_media_type
     ├── ValidationFailed              422 validation_failed
     ├── InvalidProfile                422 invalid_profile
     ├── InvalidAssignment             422 invalid_assignment
     ├── UserDisabled                  423 RGP.AUTH.DISABLED
     ├── RateLimited                   429 RGP.RATE_LIMITED
     ├── InternalError                 500 RGP.INTERNAL
     ├── DatabaseUnavailable           503 database_unavailable
     └── RedisUnavailable              503 redis_unavailable

Handlers raise these; :mod:`threadline_shared.problem` renders them as problem+json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from http import HTTPStatus
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    INVALID_REQUEST = "invalid_request"
    CANCEL_ROLE = "RGP.V1.CANCEL_ROLE"
    MISSING_SESSION = "RGP.AUTH.MISSING_SESSION"
    INVALID_SESSION = "RGP.AUTH.INVALID_SESSION"
    EXPIRED = "RGP.AUTH.EXPIRED"
    INVALID_CREDENTIALS = "RGP.AUTH.INVALID_CREDENTIALS"
    CSRF = "RGP.AUTH.CSRF"
    FORBIDDEN = "RGP.RBAC.FORBIDDEN"
    NOT_FOUND = "RGP.NOT_FOUND"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "RGP.CONFLICT"
    GONE = "RGP.GONE"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    VALIDATION_FAILED = "validation_failed"
    INVALID_PROFILE = "invalid_profile"
    INVALID_ASSIGNMENT = "invalid_assignment"
    DISABLED = "RGP.AUTH.DISABLED"
    RATE_LIMITED = "RGP.RATE_LIMITED"
    INTERNAL = "RGP.INTERNAL"
    DATABASE_UNAVAILABLE = "database_unavailable"
    REDIS_UNAVAILABLE = "redis_unavailable"


PROBLEM_TYPE_PREFIX = "urn:threadline:problem:"


class ApiError(Exception):
    """Base of every client-visible error. Subclasses fix ``status``, ``code`` and a default message."""

    status: ClassVar[int] = 500
    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    default_message: ClassVar[str] = "internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details: dict[str, Any] = dict(details or {})
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.message)

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase

    def problem(self) -> dict[str, Any]:
        """The problem+json body (contract 1.7); ``details`` is omitted when empty."""
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_PREFIX + self.code.value,
            "title": self.title,
            "status": self.status,
            "code": self.code.value,
            "message": self.message,
        }
        if self.details:
            body["details"] = self.details
        return body


def field_errors(errors: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``details`` for 400 invalid_request and every 422: ``{"errors": [{"field", "message"}]}``."""
    return {"errors": [{"field": field, "message": message} for field, message in errors]}


class InvalidRequest(ApiError):
    status, code, default_message = 400, ErrorCode.INVALID_REQUEST, "invalid request"

    @classmethod
    def for_field(cls, field: str, message: str) -> InvalidRequest:
        return cls(f"invalid {field}: {message}", details=field_errors([(field, message)]))


class CancelRoleInvalid(ApiError):
    status, code, default_message = 400, ErrorCode.CANCEL_ROLE, "only assistant messages can be cancelled"


class _Unauthorized(ApiError):
    status = 401

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("WWW-Authenticate", "session")


class MissingSession(_Unauthorized):
    code, default_message = ErrorCode.MISSING_SESSION, "authentication required"


class InvalidSession(_Unauthorized):
    code, default_message = ErrorCode.INVALID_SESSION, "invalid or revoked session"


class SessionExpired(_Unauthorized):
    code, default_message = ErrorCode.EXPIRED, "session expired"


class InvalidCredentials(_Unauthorized):
    code, default_message = ErrorCode.INVALID_CREDENTIALS, "invalid credentials"


class CsrfFailed(ApiError):
    status, code, default_message = 403, ErrorCode.CSRF, "CSRF token mismatch"


class Forbidden(ApiError):
    status, code, default_message = 403, ErrorCode.FORBIDDEN, "forbidden"


class NotFound(ApiError):
    status, code, default_message = 404, ErrorCode.NOT_FOUND, "not found"


class MethodNotAllowed(ApiError):
    status, code, default_message = 405, ErrorCode.METHOD_NOT_ALLOWED, "method not allowed"


class Conflict(ApiError):
    status, code, default_message = 409, ErrorCode.CONFLICT, "conflict"


class Gone(ApiError):
    status, code, default_message = 410, ErrorCode.GONE, "gone"


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, ErrorCode.PAYLOAD_TOO_LARGE, "request body too large"


class UnsupportedMediaType(ApiError):
    status, code = 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE
    default_message = "request body must be application/json"


class ValidationFailed(ApiError):
    status, code, default_message = 422, ErrorCode.VALIDATION_FAILED, "validation failed"

    @classmethod
    def for_field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", details=field_errors([(field, message)]))


class InvalidProfile(ApiError):
    status, code, default_message = 422, ErrorCode.INVALID_PROFILE, "invalid rate-limit profile"


class InvalidAssignment(ApiError):
    status, code, default_message = 422, ErrorCode.INVALID_ASSIGNMENT, "invalid rate-limit assignment"


class UserDisabled(ApiError):
    status, code, default_message = 423, ErrorCode.DISABLED, "user is disabled"


class RateLimited(ApiError):
    status, code, default_message = 429, ErrorCode.RATE_LIMITED, "rate limit exceeded"


class InternalError(ApiError):
    status, code, default_message = 500, ErrorCode.INTERNAL, "internal server error"


class DatabaseUnavailable(ApiError):
    status, code, default_message = 503, ErrorCode.DATABASE_UNAVAILABLE, "database unavailable"


class RedisUnavailable(ApiError):
    status, code, default_message = 503, ErrorCode.REDIS_UNAVAILABLE, "redis unavailable"
