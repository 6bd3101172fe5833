"""Operational endpoint bodies (contract 2.5). These are plain JSON, never problem+json."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from threadline_shared.dto.base import WireModel


class ReadinessCheck(StrEnum):
    """Labels of ``ReadyResponse.missing`` (2.5)."""

    DATABASE = "database"
    MIGRATIONS = "migrations"
    REDIS = "redis"
    LISTENER = "listener"


class HealthResponse(WireModel):
    """``GET /healthz``: liveness only."""

    status: Literal["ok"] = "ok"


class ReadyResponse(WireModel):
    """``GET /readyz``: ``200 {"ready": true}`` or ``503 {"ready": false, "missing": [...]}``."""

    ready: bool
    missing: list[ReadinessCheck] | None = None

    @classmethod
    def from_missing(cls, missing: list[ReadinessCheck]) -> ReadyResponse:
        """Ready when nothing is missing; ``missing`` is then left out of the body."""
        return cls(ready=not missing, missing=missing or None)
