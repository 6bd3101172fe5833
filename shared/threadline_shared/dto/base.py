"""Serialisation rules shared by every DTO (contract 1.1-1.3).

- :class:`WireModel` is the base of every response DTO and event payload. Dumping it as JSON omits optional
  fields whose value is ``None``, except the names a subclass lists in ``keep_null``.
- :class:`RequestModel` is the base of every request DTO: unknown fields are ignored, ``null`` means "not
  given". Integer and boolean fields are declared ``StrictInt`` / ``StrictBool`` (``dto.fields``) so that
  ``2.5``, ``"2"``, ``"true"`` are rejected.
- :data:`Uuid` accepts upper or lower case but only the hyphenated form, and is written lowercase.
- :data:`Timestamp` is written RFC 3339 UTC with ``Z`` and exactly six fractional digits.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

_HYPHENATED_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def parse_uuid(value: Any) -> UUID:
    """Parse a hyphenated UUID in either case; raise ValueError otherwise."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str) and _HYPHENATED_UUID.fullmatch(value):
        return UUID(value)
    raise ValueError("must be a hyphenated UUID")


def format_timestamp(value: datetime) -> str:
    """``2025-03-08T14:30:00.123456Z``; naive values are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _as_aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


Uuid = Annotated[UUID, BeforeValidator(parse_uuid), PlainSerializer(lambda v: str(v), return_type=str)]
Timestamp = Annotated[
    datetime,
    BeforeValidator(_as_aware),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]


class WireModel(BaseModel):
    """Base of response DTOs and event payloads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    keep_null: ClassVar[frozenset[str]] = frozenset()

    # No return annotation on purpose: with one, pydantic would describe every response as that type in
    # JSON Schema (and so in /openapi.json) instead of using the model's fields.
    @model_serializer(mode="wrap")
    def _omit_nulls(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo):  # type: ignore[no-untyped-def]
        data = handler(self)
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None or k in self.keep_null}
        return data

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict of this model, following the contract's rules."""
        result: dict[str, Any] = self.model_dump(mode="json")
        return result

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_wire())


class RequestModel(BaseModel):
    """Base of request DTOs."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=False)
