"""What every route group shares: the HTTP session and typed parsing of answers."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, TypeAdapter

from threadline_client.http import HttpSession

Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")

Id = UUID | str
"""A UUID, or its text (either case, hyphenated: contract 1.2)."""


class RouteGroup:
    """Base of the route mixins."""

    session: HttpSession


def parse(model: type[Model], response: httpx.Response) -> Model:
    return model.model_validate_json(response.content)


def parse_list(adapter: TypeAdapter[list[T]], response: httpx.Response) -> list[T]:
    return adapter.validate_json(response.content)


def ident(value: Id) -> str:
    """A path segment or JSON value for an id."""
    return str(value)
