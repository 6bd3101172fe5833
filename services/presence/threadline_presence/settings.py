"""Settings of the presence service (contract section 10)."""

from __future__ import annotations

from pydantic import Field

from threadline_shared.settings import Settings


class PresenceSettings(Settings):
    port: int = Field(default=8002, ge=0, le=65535)
