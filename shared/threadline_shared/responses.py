"""Success responses: a shared DTO as JSON (nulls omitted per the contract), or 204 without a body."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import Response

from threadline_shared.dto.base import WireModel


def model_response(
    model: WireModel, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(model.to_json(), status_code=status_code, headers=headers, media_type="application/json")


def no_content(headers: Mapping[str, str] | None = None) -> Response:
    return Response(status_code=204, headers=headers)
