"""Rate-limit profile and assignment DTOs (contract 8.1, 8.4, 8.8).

The admin request DTOs are loosely typed on purpose: a bad name, algorithm or params is a 422
``invalid_profile`` and a bad method or path a 422 ``invalid_assignment``, not ``validation_failed``. The
service runs the pure checks below and maps :class:`RateLimitValidationError` to those errors;
``RateLimitValidationError.errors`` is ready for ``details.errors`` (1.7).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, StrictInt, StrictStr, TypeAdapter, ValidationError

from threadline_shared.dto.base import RequestModel, Timestamp, Uuid, WireModel

GCRA: Literal["gcra"] = "gcra"
DEFAULT_PROFILE = "default"
LOGIN_PROFILE = "auth.login"
CONVERSATION_POST_PROFILE = "conversation.post"
RESERVED_PROFILE_NAMES = frozenset({DEFAULT_PROFILE, LOGIN_PROFILE})
PROFILE_NAME_MAX_CHARS = 64
MAX_REQUESTS_PER_SECOND = 10_000
MAX_BURST = 10_000
ASSIGNMENT_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
ASSIGNMENT_PATH_MAX_CHARS = 512


class RateLimitValidationError(ValueError):
    """A rejected profile or assignment; ``errors`` = ``[{"field": ..., "message": ...}]``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> RateLimitValidationError:
        return cls([{"field": field, "message": message}])


def _check_rate(value: Any) -> int | float:
    # A JSON number: an integer stays an integer so the stored params are written back as given.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    # `not (0 < v <= max)` also rejects NaN.
    if not 0 < value <= MAX_REQUESTS_PER_SECOND:
        raise ValueError(f"must be greater than 0 and at most {MAX_REQUESTS_PER_SECOND}")
    return value


class GcraParams(WireModel):
    """``params`` of a ``gcra`` profile (8.1). An integer rate stays an integer when written back."""

    requests_per_second: Annotated[int | float, PlainValidator(_check_rate, json_schema_input_type=float)]
    burst: StrictInt = Field(ge=1, le=MAX_BURST)

    @property
    def emission_interval_ms(self) -> float:
        """``T = 1000 / requests_per_second`` (8.4)."""
        return 1000 / self.requests_per_second

    @property
    def tolerance_ms(self) -> float:
        """``τ = (burst − 1) × T`` (8.4)."""
        return (self.burst - 1) * self.emission_interval_ms


CONVERSATION_POST_FALLBACK = GcraParams(requests_per_second=5, burst=10)
"""Posting limit used when the ``conversation.post`` profile was deleted (8.7); also its seed values (8.1)."""


def validate_profile_name(name: Any) -> str:
    """The trimmed profile name; blank, over 64 characters or reserved names are rejected (8.8)."""
    if not isinstance(name, str):
        raise RateLimitValidationError.single("name", "must be a string")
    trimmed = name.strip()
    if not trimmed:
        raise RateLimitValidationError.single("name", "must not be blank")
    if len(trimmed) > PROFILE_NAME_MAX_CHARS:
        raise RateLimitValidationError.single(
            "name", f"must have at most {PROFILE_NAME_MAX_CHARS} characters"
        )
    if trimmed in RESERVED_PROFILE_NAMES:
        raise RateLimitValidationError.single("name", f"{trimmed!r} is a reserved profile name")
    return trimmed


def validate_algorithm(algorithm: Any) -> Literal["gcra"]:
    """``None`` (not given) means ``gcra``, the only algorithm (8.1)."""
    if algorithm is None or algorithm == GCRA:
        return GCRA
    raise RateLimitValidationError.single("algorithm", "must be 'gcra'")


def validate_gcra_params(params: Any) -> GcraParams:
    """``requests_per_second`` in (0, 10000], ``burst`` in 1..10000, both JSON numbers (8.1)."""
    if not isinstance(params, Mapping):
        raise RateLimitValidationError.single("params", "must be an object")
    try:
        return GcraParams.model_validate(params)
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(str(part) for part in ("params", *error["loc"])),
                "message": error["msg"].removeprefix("Value error, "),
            }
            for error in exc.errors()
        ]
        raise RateLimitValidationError(errors) from exc


def normalise_assignment(method: Any, path: Any) -> tuple[str, str]:
    """``(METHOD, /path)`` of an assignment (8.8).

    The method is uppercased and must be GET, POST, PUT, PATCH, DELETE or HEAD. The path must be non-empty
    and free of whitespace; it gets a leading ``/`` when missing and then has at most 512 characters.
    """
    errors: list[dict[str, str]] = []
    normalised_method = method.upper() if isinstance(method, str) else ""
    if normalised_method not in ASSIGNMENT_METHODS:
        errors.append({"field": "method", "message": f"must be one of {', '.join(ASSIGNMENT_METHODS)}"})
    normalised_path = ""
    if not isinstance(path, str) or not path:
        errors.append({"field": "path", "message": "must be a non-empty string"})
    elif any(char.isspace() for char in path):
        errors.append({"field": "path", "message": "must not contain whitespace"})
    else:
        normalised_path = path if path.startswith("/") else f"/{path}"
        if len(normalised_path) > ASSIGNMENT_PATH_MAX_CHARS:
            errors.append(
                {"field": "path", "message": f"must have at most {ASSIGNMENT_PATH_MAX_CHARS} characters"}
            )
    if errors:
        raise RateLimitValidationError(errors)
    return normalised_method, normalised_path


# ---- requests ---------------------------------------------------------------------------------------------


class CreateRateLimitProfileRequest(RequestModel):
    """``POST /api/admin/limits/profiles`` (8.8); check with the functions above."""

    name: StrictStr
    algorithm: StrictStr | None = None
    params: dict[str, Any]
    description: StrictStr | None = None


class UpdateRateLimitProfileRequest(RequestModel):
    """``PUT /api/admin/limits/profiles/{profile_id}`` (8.8): replaces params and description (omitted =
    cleared)."""

    params: dict[str, Any]
    description: StrictStr | None = None


class AssignRateLimitRequest(RequestModel):
    """``POST /api/admin/limits/assignments`` (8.8); check ``method`` and ``path`` with
    :func:`normalise_assignment`."""

    profile_id: Uuid
    method: StrictStr
    path: StrictStr


# ---- responses --------------------------------------------------------------------------------------------


class RateLimitProfile(WireModel):
    """A stored profile (8.8); the list route answers a bare array, by name."""

    id: Uuid
    name: str
    algorithm: Literal["gcra"] = GCRA
    params: GcraParams
    description: str | None = None
    created_at: Timestamp
    updated_at: Timestamp


class RateLimitAssignment(WireModel):
    """A route assignment (8.8); the list route answers a bare array, by method then ``path_pattern``."""

    id: Uuid
    profile_id: Uuid
    profile_name: str
    method: str
    path_pattern: str
    created_at: Timestamp
    updated_at: Timestamp


RATE_LIMIT_PROFILE_LIST_ADAPTER: TypeAdapter[list[RateLimitProfile]] = TypeAdapter(list[RateLimitProfile])
RATE_LIMIT_ASSIGNMENT_LIST_ADAPTER: TypeAdapter[list[RateLimitAssignment]] = TypeAdapter(
    list[RateLimitAssignment]
)
