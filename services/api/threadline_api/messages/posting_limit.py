"""The posting limit (contract 8.7): GCRA per (user, conversation) with the ``conversation.post`` profile.

The profile's parameters are read from PostgreSQL and kept for :data:`PROFILE_TTL_SECONDS`; when the profile
was deleted the built-in values apply (5 per second, burst 10). The rate-limit issue replaces this cache with
NOTIFY-driven reloads.
"""

from __future__ import annotations

import time
from uuid import UUID

import asyncpg
from starlette.requests import Request

from threadline_shared.errors import RateLimited
from threadline_shared.limiter import Limiter, Rate

PROFILE = "conversation.post"
FALLBACK = Rate(requests_per_second=5, burst=10)
PROFILE_TTL_SECONDS = 1.0


class PostingRate:
    """The current ``conversation.post`` rate, re-read at most once per :data:`PROFILE_TTL_SECONDS`."""

    def __init__(self) -> None:
        self._rate = FALLBACK
        self._loaded_at = float("-inf")

    async def get(self, pool: asyncpg.Pool) -> Rate:
        if time.monotonic() - self._loaded_at >= PROFILE_TTL_SECONDS:
            params = await pool.fetchval("SELECT params FROM rate_limit_profiles WHERE name = $1", PROFILE)
            self._rate = (
                Rate(float(params["requests_per_second"]), int(params["burst"]))
                if params is not None
                else FALLBACK
            )
            self._loaded_at = time.monotonic()
        return self._rate


async def check_posting_limit(request: Request, conversation_id: UUID, user_id: UUID) -> None:
    """Consume one post from the caller's bucket; 429 with the bucket's headers when it is empty."""
    limiter: Limiter = request.state.limiter
    posting_rate: PostingRate = request.app.state.posting_rate
    rate = await posting_rate.get(request.state.pool)
    decision = await limiter.check(PROFILE, f"post:{conversation_id}", f"u:{user_id}", rate)
    if decision is not None and not decision.allowed:
        raise RateLimited(
            "message rate limit exceeded",
            details={"retry_after_seconds": decision.retry_after_seconds},
            headers=decision.headers(),
        )
