"""Reading requests: path and query parameters (400) and JSON bodies (415, 400, 422), contract 1.1-1.7."""

from __future__ import annotations

import json
import re
from typing import TypeVar
from uuid import UUID

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from threadline_shared.dto.base import parse_uuid
from threadline_shared.errors import InvalidRequest, UnsupportedMediaType, ValidationFailed, field_errors

ModelT = TypeVar("ModelT", bound=BaseModel)

_DECIMAL = re.compile(r"^[0-9]+$")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
WIDE = 2.0**63


def path_uuid(request: Request, name: str) -> UUID:
    """A UUID path parameter; 400 ``invalid_request`` when malformed."""
    try:
        return parse_uuid(request.path_params[name])
    except ValueError:
        raise InvalidRequest.for_field(name, "must be a hyphenated UUID") from None


def query_int(request: Request, name: str, *, default: int, minimum: int, maximum: int | None = None) -> int:
    """An integer query parameter ≥ ``minimum``; larger than ``maximum`` is clamped (contract 1.6)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _DECIMAL.match(raw) or int(raw) < minimum:
        raise InvalidRequest.for_field(name, f"must be an integer >= {minimum}")
    value = int(raw)
    return min(value, maximum) if maximum is not None else value


def query_uuid(request: Request, name: str) -> UUID | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return parse_uuid(raw)
    except ValueError:
        raise InvalidRequest.for_field(name, "must be a hyphenated UUID") from None


def client_ip(request: Request) -> str:
    """The client's IP: ``X-Real-IP`` when THREADLINE_TRUST_PROXY_HEADERS is on (behind the edge), else the
    TCP peer (contract 2.3)."""
    if request.app.state.settings.trust_proxy_headers:
        forwarded = request.headers.get("x-real-ip", "").strip()
        if forwarded:
            return forwarded
    return request.client.host if request.client else "unknown"


def is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _decode(raw: bytes) -> object:
    """``raw`` as orjson reads it, except that an integer keeps being an integer whatever its size, held to
    64 bits: orjson reads one beyond 64 bits as a float, which a strict integer field would refuse as "not an
    integer", where a bounded field should say "out of range" and a clamped one clamp it (1.5, 7.3). A body
    holding such a number is read again with the standard library's parser, which keeps integers; nested
    deeper than that parser goes, it stays as orjson read it. An integer beyond a double's range (over 308
    digits) stays malformed JSON (400)."""
    data = orjson.loads(raw)
    if not _may_hold_a_wide_integer(data):
        return data
    try:
        return json.loads(raw, parse_int=_int64)
    except (RecursionError, ValueError):
        return data


def _may_hold_a_wide_integer(data: object) -> bool:
    """Whether orjson's reading holds a float of 2^63 or more (an integer literal beyond 64 bits may have
    become one) or an integer beyond int64. Walked without recursion: orjson allows 1,024 levels."""
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float):
            if abs(item) >= WIDE:
                return True
        elif isinstance(item, int) and not INT64_MIN <= item <= INT64_MAX:
            return True
    return False


def _int64(digits: str) -> int:
    return min(max(int(digits), INT64_MIN), INT64_MAX)


async def read_json(request: Request, model: type[ModelT]) -> ModelT:
    """Parse the body into ``model``: empty body = ``{}``; 415 wrong type; 400 bad JSON; 422 wrong shape."""
    raw = await request.body()
    if not raw:
        data: object = {}
    else:
        if not is_json(request.headers.get("content-type", "")):
            raise UnsupportedMediaType()
        try:
            data = _decode(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest("malformed JSON body", details=field_errors([("body", str(exc))])) from None
    if not isinstance(data, dict):
        raise ValidationFailed.for_field("body", "must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [(_field_name(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        raise ValidationFailed(
            "request body does not fit " + model.__name__, details=field_errors(errors)
        ) from None
