"""GCRA rate limiting held in Redis (contract 8.4-8.6, 8.9), decided by one atomic Lua script.

``T = 1000 / requests_per_second`` ms and ``tau = (burst - 1) * T``, both in whole microseconds. A missing
bucket means ``TAT = now``. A request at ``now`` is allowed when ``max(TAT, now) - now <= tau``; it then
stores ``TAT = max(TAT, now) + T`` with a TTL of ``TAT - now``. The script reads the Redis clock (``TIME``)
unless a test passes its own ``now``. If Redis errors or does not answer within the budget, the request is
allowed without headers and ``threadline_rate_limit_fail_open_total`` counts it (fail open).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, KeyT

from threadline_shared.clock import Clock
from threadline_shared.metrics import RATE_LIMIT_DECISIONS, RATE_LIMIT_FAIL_OPEN
from threadline_shared.redis import run_script_many

log = logging.getLogger(__name__)

KEY_PREFIX = "tl:rl:"

# Integer microseconds inside the script, so that sums near 2^50 stay exact in Lua's doubles; the stored TAT
# is milliseconds with three decimals (contract 7.5).
_GCRA = """
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = math.floor(tonumber(stored) * 1000 + 0.5) end
local t = math.max(tat, now)
if t - now > tau then
  return {0, tostring(tat), tostring(now), tostring(t)}
end
local new_tat = t + interval
local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%.3f', new_tat / 1000), 'PX', ttl_ms)
return {1, tostring(new_tat), tostring(now), tostring(t)}
"""


@dataclass(frozen=True, slots=True)
class Rate:
    requests_per_second: float
    burst: int

    @property
    def interval_us(self) -> int:
        """T in whole microseconds (rounding error below a microsecond per request)."""
        return max(1, round(1_000_000 / self.requests_per_second))

    @property
    def tau_us(self) -> int:
        return (self.burst - 1) * self.interval_us


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    profile: str
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int | None

    def headers(self) -> dict[str, str]:
        """``RateLimit-*`` and ``X-RateLimit-Profile`` (8.6), plus ``Retry-After`` on a denial."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "X-RateLimit-Profile": self.profile,
        }
        if self.retry_after_seconds is not None:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


def decide(profile: str, rate: Rate, allowed: bool, tat_after: int, now: int, t: int) -> Decision:
    """Turn the script's answer (microseconds) into the headers' numbers (8.4)."""
    interval, tau = rate.interval_us, rate.tau_us
    reset = math.ceil(max(0, tat_after - now) / 1_000_000)
    if allowed:
        remaining = max(0, (now + tau - tat_after) // interval + 1)
        return Decision(True, profile, rate.burst, remaining, reset, None)
    retry_after = max(1, math.ceil((t - now - tau) / 1_000_000))
    return Decision(False, profile, rate.burst, 0, reset, retry_after)


class Limiter:
    """One GCRA decision per call; keys are ``tl:rl:<profile>:<route>:<subject>``."""

    def __init__(
        self, redis: Redis, *, timeout_ms: int, enabled: bool = True, clock: Clock | None = None
    ) -> None:
        self.redis = redis
        self.timeout = timeout_ms / 1000
        self.enabled = enabled
        self.clock = clock
        self._script = redis.register_script(_GCRA)

    async def check(self, profile: str, route: str, subject: str, rate: Rate) -> Decision | None:
        """The decision, or None when limiting is off or Redis failed (the request is then allowed)."""
        if not self.enabled:
            return None
        now_arg = "" if self.clock is None else str(round(self.clock.now().timestamp() * 1_000_000))
        key = f"{KEY_PREFIX}{profile}:{route}:{subject}"
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self._script(keys=[key], args=[rate.interval_us, rate.tau_us, now_arg])
        except (RedisError, OSError, TimeoutError) as exc:
            RATE_LIMIT_FAIL_OPEN.labels(profile).inc()
            log.warning("rate limit failed open for %s: %s", profile, exc.__class__.__name__)
            return None
        return _decision(profile, rate, answer)

    async def check_many(self, buckets: Sequence[tuple[str, str, str, Rate]]) -> list[Decision | None]:
        """:meth:`check` for many ``(profile, route, subject, rate)`` at once: one Redis round trip (a
        pipeline of the same script). A Redis failure fails every one of them open."""
        if not self.enabled:
            return [None] * len(buckets)
        now_arg = "" if self.clock is None else str(round(self.clock.now().timestamp() * 1_000_000))

        calls: list[tuple[list[KeyT], list[EncodableT]]] = [
            ([f"{KEY_PREFIX}{profile}:{route}:{subject}"], [rate.interval_us, rate.tau_us, now_arg])
            for profile, route, subject, rate in buckets
        ]
        try:
            async with asyncio.timeout(self.timeout):
                answers = await run_script_many(self.redis, self._script, calls)
        except (RedisError, OSError, TimeoutError) as exc:
            for profile, *_ in buckets:
                RATE_LIMIT_FAIL_OPEN.labels(profile).inc()
            log.warning("rate limit failed open for %d requests: %s", len(buckets), exc.__class__.__name__)
            return [None] * len(buckets)
        return [
            _decision(profile, rate, answer)
            for (profile, _, _, rate), answer in zip(buckets, answers, strict=True)
        ]


def _decision(profile: str, rate: Rate, answer: Sequence[Any]) -> Decision:
    allowed, tat_after, now, t = (int(float(value)) for value in answer)
    decision = decide(profile, rate, bool(allowed), tat_after, now, t)
    RATE_LIMIT_DECISIONS.labels(profile, "allowed" if decision.allowed else "denied").inc()
    return decision
