"""What every route group shares: the HTTP session and typed parsing of answers."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from threadline_client.errors import UnexpectedResponse
from threadline_client.http import HttpSession

Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")

Id = UUID | str
"""A UUID, or its text (either case, hyphenated: contract 1.2)."""


class RouteGroup:
    """Base of the route mixins."""

    session: HttpSession


def _unexpected(response: httpx.Response, exc: ValidationError) -> UnexpectedResponse:
    first = exc.errors()[0] if exc.errors() else {"msg": str(exc)}
    where = ".".join(str(part) for part in first.get("loc", ()))
    reason = f"{where}: {first['msg']}" if where else str(first["msg"])
    return UnexpectedResponse(str(response.url), f"{response.status_code} answer, {reason}")


def parse(model: type[Model], response: httpx.Response) -> Model:
    """The answer's body as ``model``; :class:`UnexpectedResponse` if it does not fit."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise _unexpected(response, exc) from exc


def parse_list(adapter: TypeAdapter[list[T]], response: httpx.Response) -> list[T]:
    try:
        return adapter.validate_json(response.content)
    except ValidationError as exc:
        raise _unexpected(response, exc) from exc


def ident(value: Id) -> str:
    """A path segment or JSON value for an id."""
    return str(value)
