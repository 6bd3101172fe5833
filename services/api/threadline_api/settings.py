"""Settings of the api service (contract section 10)."""

from __future__ import annotations

from pydantic import Field

from threadline_shared.settings import Settings


class ApiSettings(Settings):
    port: int = Field(default=8000, ge=0, le=65535)
    post_batch_lock_wait_ms: int = Field(default=50, ge=1)
    """How long the posts made together in one transaction may wait for a lock; past it the transaction
    rolls back and each post is made on its own (threadline_api.messages.fastpath)."""
