"""The posting limit (contract 8.7): GCRA per (user, conversation) with the ``conversation.post`` profile,
checked last by the root and reply routes; a denied post creates nothing. The profile comes from the
process's rule book (reloaded on ``NOTIFY tl_limits``); when it was deleted the built-in values apply
(5 per second, burst 10). Assistant-worker messages never pass here."""

from __future__ import annotations

from uuid import UUID

from starlette.requests import Request

from threadline_shared.errors import RateLimited
from threadline_shared.limiter import Limiter
from threadline_shared.ratelimit.rules import POSTING_PROFILE, RuleBook


async def check_posting_limit(request: Request, conversation_id: UUID, user_id: UUID) -> None:
    """Consume one post from the caller's bucket; 429 with the bucket's headers when it is empty."""
    limiter: Limiter = request.state.limiter
    book: RuleBook = request.state.rules
    decision = await limiter.check(
        POSTING_PROFILE, f"post:{conversation_id}", f"u:{user_id}", book.posting_rate()
    )
    if decision is not None and not decision.allowed:
        raise RateLimited(
            "message rate limit exceeded",
            details={"retry_after_seconds": decision.retry_after_seconds},
            headers=decision.headers(),
        )
