"""The sweeper (contract 7.2, 7.3): every THREADLINE_PRESENCE_SWEEP_INTERVAL_MS, one
:meth:`~threadline_presence.service.PresenceService.sweep`. It runs in the lifespan's TaskGroup and ends
when cancelled at shutdown. Safe with any number of replicas: the store's scripts let exactly one sweeper
make each expiry. While Redis or PostgreSQL is down it logs once per outage and keeps trying."""

from __future__ import annotations

import asyncio
import logging

from threadline_presence.service import PresenceService
from threadline_shared.errors import ApiError

log = logging.getLogger(__name__)


async def run_sweeper(service: PresenceService, interval_seconds: float) -> None:
    failing = False
    this_task = asyncio.current_task()
    while True:
        # A cancellation swallowed inside a driver (asyncio.wait_for on Python 3.11) must still stop us.
        if this_task is not None and this_task.cancelling():
            raise asyncio.CancelledError()
        try:
            await service.sweep()
        except ApiError as exc:  # RedisUnavailable, DatabaseUnavailable
            if not failing:
                log.warning("presence sweep failed, retrying every %.3fs: %s", interval_seconds, exc.message)
            failing = True
        except Exception:
            log.exception("presence sweep failed")
            failing = True
        else:
            if failing:
                log.info("presence sweep recovered")
            failing = False
        await asyncio.sleep(interval_seconds)
