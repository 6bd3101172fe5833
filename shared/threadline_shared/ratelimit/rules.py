"""Profiles and route assignments as every process sees them (contract 8.1, 8.2, 8.8).

Loaded from PostgreSQL at start, reloaded within a second of ``NOTIFY tl_limits`` (a dedicated LISTEN
connection) and every ``THREADLINE_RATE_LIMIT_RELOAD_SECONDS`` as a safety net. Bucket state lives in Redis
and is kept across reloads; new parameters apply from the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import asyncpg

from threadline_shared.limiter import Rate
from threadline_shared.listen import SupervisedListener
from threadline_shared.ratelimit.patterns import PathPattern, best_match
from threadline_shared.settings import Settings

log = logging.getLogger(__name__)

LIMITS_CHANNEL = "tl_limits"
DEFAULT_PROFILE = "default"
LOGIN_PROFILE = "auth.login"
POSTING_PROFILE = "conversation.post"
POSTING_FALLBACK = Rate(requests_per_second=5, burst=10)


@dataclass(frozen=True)
class Assignment:
    method: str
    pattern: PathPattern
    profile: str


@dataclass(frozen=True)
class Rules:
    profiles: dict[str, Rate] = field(default_factory=dict)
    assignments: dict[str, list[Assignment]] = field(default_factory=dict)  # by method

    def assignment_for(self, method: str, path: str) -> Assignment | None:
        candidates = self.assignments.get(method, [])
        best = best_match((a.pattern for a in candidates), path)
        if best is None:
            return None
        return next(a for a in candidates if a.pattern is best)


async def load_rules(pool: asyncpg.Pool) -> Rules:
    profiles = await pool.fetch("SELECT name, params FROM rate_limit_profiles")
    assignments = await pool.fetch(
        """
        SELECT a.method, a.path_pattern, p.name FROM rate_limit_assignments a
        JOIN rate_limit_profiles p ON p.id = a.profile_id
        """
    )
    by_method: dict[str, list[Assignment]] = {}
    for row in assignments:
        by_method.setdefault(row["method"], []).append(
            Assignment(row["method"], PathPattern(row["path_pattern"]), row["name"])
        )
    return Rules(
        profiles={
            row["name"]: Rate(float(row["params"]["requests_per_second"]), int(row["params"]["burst"]))
            for row in profiles
        },
        assignments=by_method,
    )


class RuleBook:
    """The current :class:`Rules` of this process, kept fresh by :meth:`run`."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.database_url = settings.database_url
        self.reload_seconds = settings.rate_limit_reload_seconds
        self.default = Rate(settings.rate_limit_default_rps, settings.rate_limit_default_burst)
        self.rules = Rules()
        self._changed = asyncio.Event()

    def posting_rate(self) -> Rate:
        return self.rules.profiles.get(POSTING_PROFILE, POSTING_FALLBACK)

    async def reload(self) -> None:
        self.rules = await load_rules(self.pool)

    async def run(self) -> None:
        """Reload on NOTIFY tl_limits and periodically; survive database outages."""
        # on (re)connect: catch up with changes made while we were not listening
        listener = SupervisedListener(
            self.database_url,
            {LIMITS_CHANNEL: lambda _payload: self._changed.set()},
            on_connected=self._changed.set,
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(listener.run())
            while True:
                try:
                    await self.reload()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("rate-limit rules not reloaded: %s", exc)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.reload_seconds):
                        await self._changed.wait()
                self._changed.clear()
