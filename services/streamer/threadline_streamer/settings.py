"""Settings of the streamer service (contract section 10)."""

from __future__ import annotations

from pydantic import Field

from threadline_shared.settings import Settings


class StreamerSettings(Settings):
    port: int = Field(default=8001, ge=0, le=65535)
