"""Event-log retention (contract 6.9): every interval, delete in batches the events older than the age limit
and those beyond the newest N of each conversation, moving each conversation's prune horizon (the highest
removed sequence number and that event's ``created_at``) in the same transaction. Rows are claimed with
``SKIP LOCKED`` and horizons locked in a fixed order, so several streamer replicas can prune at once."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import asyncpg

from threadline_shared.clock import Clock

log = logging.getLogger(__name__)

_REMOVE = """
removed AS (
    DELETE FROM event_log e USING doomed d
    WHERE e.conversation_id = d.conversation_id AND e.seq = d.seq
    RETURNING e.conversation_id, e.seq, e.created_at
)
SELECT conversation_id, max(seq) AS max_seq, max(created_at) AS max_created, count(*) AS removed
FROM removed GROUP BY conversation_id ORDER BY conversation_id
"""

_PRUNE_BY_AGE = f"""
WITH doomed AS (
    SELECT conversation_id, seq FROM event_log
    WHERE created_at < $1
    ORDER BY created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), {_REMOVE}
"""

# Rows are claimed inside the per-conversation scan, so that two pruners take different rows instead of both
# picking the same first rows and one of them finding them all locked.
_PRUNE_BY_COUNT = f"""
WITH doomed AS (
    SELECT e.conversation_id, e.seq
    FROM conversations c
    CROSS JOIN LATERAL (
        SELECT conversation_id, seq FROM event_log
        WHERE conversation_id = c.id AND seq <= c.last_seq - $1
        ORDER BY seq
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    ) e
    WHERE c.last_seq - c.pruned_seq > $1
    LIMIT $2
), {_REMOVE}
"""

# Pruners lock the conversation rows of their horizons in id order, so that two of them never deadlock.
_LOCK_CONVERSATIONS = """
SELECT 1 FROM conversations WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE
"""
_HORIZON = """
UPDATE conversations c
SET pruned_seq = greatest(c.pruned_seq, d.max_seq),
    pruned_at = CASE WHEN d.max_seq > c.pruned_seq THEN d.max_created ELSE c.pruned_at END
FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[]) AS d(id, max_seq, max_created)
WHERE c.id = d.id
"""


async def _prune_batch(pool: asyncpg.Pool, query: str, *args: object) -> int:
    """One batch in one transaction: delete the claimed rows, then move the horizons they touched."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(query, *args)
        if not rows:
            return 0
        ids = [row["conversation_id"] for row in rows]
        await conn.execute(_LOCK_CONVERSATIONS, ids)
        await conn.execute(
            _HORIZON, ids, [row["max_seq"] for row in rows], [row["max_created"] for row in rows]
        )
        return sum(int(row["removed"]) for row in rows)


async def prune_once(
    pool: asyncpg.Pool, *, now: datetime, max_age: timedelta, max_events: int, batch_size: int
) -> int:
    """Prune until nothing is left to prune; return the number of events removed. Rows another pruner has
    claimed are skipped (it removes them), so concurrent pruners remove each row once."""
    total = 0
    while True:
        by_age = await _prune_batch(pool, _PRUNE_BY_AGE, now - max_age, batch_size)
        by_count = await _prune_batch(pool, _PRUNE_BY_COUNT, max_events, batch_size)
        total += by_age + by_count
        if by_age < batch_size and by_count < batch_size:
            return total


class Retention:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        interval: float,
        max_age: timedelta,
        max_events: int,
        batch: int,
    ) -> None:
        self.pool, self.clock, self.interval = pool, clock, interval
        self.max_age, self.max_events, self.batch = max_age, max_events, batch

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                removed = await prune_once(
                    self.pool,
                    now=self.clock.now(),
                    max_age=self.max_age,
                    max_events=self.max_events,
                    batch_size=self.batch,
                )
                if removed:
                    log.info("pruned %d events from the log", removed)
            except (
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
            ) as exc:
                # (InternalClientError: a session cut mid-query, as in Hub._read and the sweeper; uncaught,
                # it would end this task and with it the streamer's TaskGroup: every stream.)
                log.warning("pruning failed: %r", exc)
