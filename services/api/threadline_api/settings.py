"""Settings of the api service (contract section 10)."""

from __future__ import annotations

from pydantic import Field

from threadline_shared.settings import Settings


class ApiSettings(Settings):
    port: int = Field(default=8000, ge=0, le=65535)
