"""Event-log retention (contract 6.9): every interval, delete in batches the events older than the age limit
and those beyond the newest N of each conversation, moving each conversation's prune horizon (the highest
removed sequence number and that event's ``created_at``). Rows are claimed with ``SKIP LOCKED`` so several
streamer replicas can prune at once."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import asyncpg

from threadline_shared.clock import Clock

log = logging.getLogger(__name__)

_HORIZON = """
UPDATE conversations c
SET pruned_seq = greatest(c.pruned_seq, d.max_seq),
    pruned_at = CASE WHEN d.max_seq > c.pruned_seq THEN d.max_created ELSE c.pruned_at END
FROM (
    SELECT conversation_id, max(seq) AS max_seq, max(created_at) AS max_created
    FROM removed GROUP BY conversation_id
) d
WHERE c.id = d.conversation_id
"""

_PRUNE_BY_AGE = f"""
WITH doomed AS (
    SELECT conversation_id, seq FROM event_log
    WHERE created_at < $1
    ORDER BY created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), removed AS (
    DELETE FROM event_log e USING doomed d
    WHERE e.conversation_id = d.conversation_id AND e.seq = d.seq
    RETURNING e.conversation_id, e.seq, e.created_at
), horizon AS ({_HORIZON} RETURNING 1)
SELECT count(*) FROM removed
"""

_PRUNE_BY_COUNT = f"""
WITH doomed AS (
    SELECT e.conversation_id, e.seq
    FROM conversations c
    CROSS JOIN LATERAL (
        SELECT conversation_id, seq FROM event_log
        WHERE conversation_id = c.id AND seq <= c.last_seq - $1
        ORDER BY seq
        LIMIT $2
    ) e
    WHERE c.last_seq - c.pruned_seq > $1
    LIMIT $2
), locked AS (
    SELECT e.conversation_id, e.seq FROM event_log e JOIN doomed d USING (conversation_id, seq)
    FOR UPDATE OF e SKIP LOCKED
), removed AS (
    DELETE FROM event_log e USING locked d
    WHERE e.conversation_id = d.conversation_id AND e.seq = d.seq
    RETURNING e.conversation_id, e.seq, e.created_at
), horizon AS ({_HORIZON} RETURNING 1)
SELECT count(*) FROM removed
"""


async def prune_once(
    pool: asyncpg.Pool, *, now: datetime, max_age: timedelta, max_events: int, batch_size: int
) -> int:
    """Prune until nothing is left to prune; return the number of events removed."""
    total = 0
    while True:
        by_age = await pool.fetchval(_PRUNE_BY_AGE, now - max_age, batch_size)
        by_count = await pool.fetchval(_PRUNE_BY_COUNT, max_events, batch_size)
        total += int(by_age) + int(by_count)
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
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("pruning failed: %s", exc)
