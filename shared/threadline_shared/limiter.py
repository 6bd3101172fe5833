"""GCRA rate limiting held in Redis (contract 8.4-8.6, 8.9), decided by one atomic Lua script.

``T = 1000 / requests_per_second`` ms and ``tau = (burst - 1) * T``, both in whole microseconds. A missing
bucket means ``TAT = now``. A request at ``now`` is allowed when ``max(TAT, now) - now <= tau``; it then
stores ``TAT = max(TAT, now) + T`` with a TTL of ``TAT - now``. The script reads the Redis clock (``TIME``)
unless a test passes its own ``now`` (then the key's TTL gets :data:`CALLER_CLOCK_GRACE_MS` more). If Redis
errors or does not answer within the budget, the request is allowed without headers and
``threadline_rate_limit_fail_open_total`` counts it (fail open).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from threadline_shared.clock import Clock
from threadline_shared.metrics import RATE_LIMIT_DECISIONS, RATE_LIMIT_FAIL_OPEN
from threadline_shared.redis import PackedScript

log = logging.getLogger(__name__)

KEY_PREFIX = "tl:rl:"

CALLER_CLOCK_GRACE_MS = 60_000
"""With a caller's clock (tests' FakeClock), Redis still expires keys on its own: a key then outlives its
TTL (``TAT - now``) by this much, so that a caller's clock that stands still while real time passes never
sees a charge lapse. An expired key and a TAT at or before ``now`` decide alike, so the TTL only frees
memory. Measured: at 50/s a bucket's TTL is 20 ms, and a loaded CI host lost a charge between two pipelined
heartbeats."""

# Integer microseconds inside the script, so that sums near 2^50 stay exact in Lua's doubles; the stored TAT
# is milliseconds with three decimals (contract 7.5). One call decides any number of buckets, in order (a
# bucket named twice is charged twice): KEYS are the buckets, ARGV is ``now`` ('' = the Redis clock) then
# ``interval, tau`` per bucket. The answer is ``now`` then ``allowed, tat, t`` per bucket, where ``tat`` is
# the TAT after the decision (the stored one on a denial) and ``t = max(TAT before, now)``.
_GCRA = """
local now
local grace_ms = 0
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
  grace_ms = CALLER_CLOCK_GRACE_MS
else
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
end
local result = {string.format('%.0f', now)}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tau = tonumber(ARGV[2 * i + 1])
  local stored = redis.call('GET', key)
  local tat = now
  if stored then tat = math.floor(tonumber(stored) * 1000 + 0.5) end
  local t = math.max(tat, now)
  if t - now > tau then
    table.insert(result, 0)
    table.insert(result, string.format('%.0f', tat))
  else
    tat = t + interval
    local ttl_ms = math.max(1, math.ceil((tat - now) / 1000)) + grace_ms
    redis.call('SET', key, string.format('%.3f', tat / 1000), 'PX', ttl_ms)
    table.insert(result, 1)
    table.insert(result, string.format('%.0f', tat))
  end
  table.insert(result, string.format('%.0f', t))
end
return result
""".replace("CALLER_CLOCK_GRACE_MS", str(CALLER_CLOCK_GRACE_MS))


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

    def header_pairs(self) -> list[tuple[bytes, bytes]]:
        """:meth:`headers` as raw ASGI header pairs (lower-case names)."""
        pairs = [
            (b"ratelimit-limit", b"%d" % self.limit),
            (b"ratelimit-remaining", b"%d" % self.remaining),
            (b"ratelimit-reset", b"%d" % self.reset_seconds),
            (b"x-ratelimit-profile", self.profile.encode()),
        ]
        if self.retry_after_seconds is not None:
            pairs.append((b"retry-after", b"%d" % self.retry_after_seconds))
        return pairs

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
        self._script = PackedScript(redis, _GCRA)

    async def check(self, profile: str, route: str, subject: str, rate: Rate) -> Decision | None:
        """The decision, or None when limiting is off or Redis failed (the request is then allowed)."""
        return (await self.check_many([(profile, route, subject, rate)]))[0]

    async def check_many(self, buckets: Sequence[tuple[str, str, str, Rate]]) -> list[Decision | None]:
        """:meth:`check` for many ``(profile, route, subject, rate)`` at once, in order: one script call. A
        Redis failure fails every one of them open."""
        if not self.enabled or not buckets:
            return [None] * len(buckets)
        keys: list[str] = []
        now_arg = "" if self.clock is None else round(self.clock.now().timestamp() * 1_000_000)
        args: list[str | int] = [now_arg]
        for profile, route, subject, rate in buckets:
            keys.append(f"{KEY_PREFIX}{profile}:{route}:{subject}")
            args += (rate.interval_us, rate.tau_us)
        try:
            async with asyncio.timeout(self.timeout):
                now, *answers = await self._script(keys, args)
        except (RedisError, OSError, TimeoutError) as exc:
            for profile, *_ in buckets:
                RATE_LIMIT_FAIL_OPEN.labels(profile).inc()
            log.warning("rate limit failed open for %d requests: %s", len(buckets), exc.__class__.__name__)
            return [None] * len(buckets)
        now_us = int(now)
        decisions = [
            _decision(profile, rate, now_us, answers[3 * index : 3 * index + 3])
            for index, (profile, _, _, rate) in enumerate(buckets)
        ]
        for (profile, allowed), count in Counter((d.profile, d.allowed) for d in decisions).items():
            RATE_LIMIT_DECISIONS.labels(profile, "allowed" if allowed else "denied").inc(count)
        return list(decisions)


def _decision(profile: str, rate: Rate, now: int, answer: Sequence[Any]) -> Decision:
    allowed, tat_after, t = (int(value) for value in answer)
    return decide(profile, rate, bool(allowed), tat_after, now, t)
