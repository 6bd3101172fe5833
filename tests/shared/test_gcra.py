"""GCRA in Redis with a controlled clock (contract 8.4, 8.6): burst then steady rate, exact header values."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from threadline_devstack.servers import free_port
from threadline_shared.clock import FakeClock
from threadline_shared.limiter import CALLER_CLOCK_GRACE_MS, Decision, Limiter, Rate

RATE = Rate(requests_per_second=2, burst=3)  # T = 500 ms, tau = 1000 ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture
def limiter(redis: Redis, clock: FakeClock) -> Limiter:
    return Limiter(redis, timeout_ms=250, clock=clock)


async def decide(limiter: Limiter) -> tuple[bool, int, int, int | None]:
    decision = await limiter.check("p", "GET /x", "u:1", RATE)
    assert decision is not None
    return decision.allowed, decision.remaining, decision.reset_seconds, decision.retry_after_seconds


async def test_a_fresh_bucket_allows_exactly_its_burst(limiter: Limiter) -> None:
    results = [await decide(limiter) for _ in range(4)]
    assert results == [
        (True, 2, 1, None),
        (True, 1, 1, None),
        (True, 0, 2, None),
        (False, 0, 2, 1),
    ]


async def test_then_one_request_per_interval(limiter: Limiter, clock: FakeClock) -> None:
    for _ in range(3):
        await decide(limiter)
    clock.advance(0.499)
    assert (await decide(limiter))[0] is False
    clock.advance(0.001)
    assert await decide(limiter) == (True, 0, 2, None)
    assert (await decide(limiter))[0] is False
    clock.advance(0.5)
    assert (await decide(limiter))[0] is True


async def test_a_denial_leaves_the_bucket_unchanged(limiter: Limiter, clock: FakeClock) -> None:
    for _ in range(3):
        await decide(limiter)
    for _ in range(5):
        assert (await decide(limiter))[0] is False
    clock.advance(0.5)
    assert (await decide(limiter))[0] is True, "denied requests consumed nothing"


async def test_retry_after_rounds_up_to_whole_seconds(redis: Redis, clock: FakeClock) -> None:
    limiter = Limiter(redis, timeout_ms=250, clock=clock)
    slow = Rate(requests_per_second=0.25, burst=1)  # T = 4 s
    assert (await limiter.check("p", "r", "s", slow)).allowed  # type: ignore[union-attr]
    denied = await limiter.check("p", "r", "s", slow)
    assert denied is not None
    assert (denied.allowed, denied.retry_after_seconds, denied.reset_seconds) == (False, 4, 4)
    assert denied.headers() == {
        "RateLimit-Limit": "1",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "4",
        "X-RateLimit-Profile": "p",
        "Retry-After": "4",
    }


async def test_state_is_a_tat_with_a_ttl_under_the_contract_key(limiter: Limiter, redis: Redis) -> None:
    await decide(limiter)
    key = "tl:rl:p:GET /x:u:1"
    assert float(await redis.get(key)) > 0
    assert 0 < await redis.pttl(key) <= 500 + CALLER_CLOCK_GRACE_MS  # T = 500 ms, FakeClock: with the grace


async def test_buckets_are_separate_per_subject(limiter: Limiter) -> None:
    for _ in range(3):
        await limiter.check("p", "GET /x", "u:1", RATE)
    other = await limiter.check("p", "GET /x", "u:2", RATE)
    assert other is not None and other.allowed


async def test_the_redis_clock_is_used_without_a_test_clock(redis: Redis) -> None:
    limiter = Limiter(redis, timeout_ms=250)
    slow = Rate(requests_per_second=0.1, burst=3)  # T = 10 s: four calls fit in it on any host
    decisions = [await limiter.check("p", "r", "real", slow) for _ in range(4)]
    assert [d.allowed for d in decisions if d is not None] == [True, True, True, False]
    assert 20_000 < await redis.pttl("tl:rl:p:r:real") <= 30_000  # TAT - now on Redis's clock, no grace


async def test_a_charge_made_on_a_standing_test_clock_does_not_lapse_in_real_time(
    limiter: Limiter, redis: Redis
) -> None:
    fast = Rate(requests_per_second=1000, burst=2)  # T = 1 ms: its contract TTL is 1 ms of real time
    assert (await limiter.check("p", "r", "s", fast)).allowed  # type: ignore[union-attr]
    await asyncio.sleep(0.05)  # real time passes, the FakeClock stands still
    second = await limiter.check("p", "r", "s", fast)
    third = await limiter.check("p", "r", "s", fast)
    assert second is not None and third is not None
    assert (second.allowed, second.remaining, third.allowed) == (True, 0, False)


async def test_an_unreachable_redis_fails_open() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    try:
        assert await Limiter(dead, timeout_ms=250).check("p", "r", "s", RATE) is None
    finally:
        await dead.aclose()


async def test_limits_switched_off_decide_nothing(redis: Redis) -> None:
    assert await Limiter(redis, timeout_ms=250, enabled=False).check("p", "r", "s", RATE) is None


async def test_many_checks_in_one_round_trip_decide_like_one_at_a_time(
    limiter: Limiter, redis: Redis, clock: FakeClock
) -> None:
    other = Limiter(redis, timeout_ms=250, clock=clock)
    one_by_one = [await other.check("p", "GET /x", f"u:{n % 2}", RATE) for n in range(8)]
    await redis.flushdb()
    together = await limiter.check_many([("p", "GET /x", f"u:{n % 2}", RATE) for n in range(8)])
    assert together == one_by_one
    assert [d.allowed for d in together if d is not None] == [True] * 6 + [False] * 2


async def test_many_checks_survive_a_script_flush(limiter: Limiter, redis: Redis) -> None:
    """After a Redis restart the scripts are gone (NOSCRIPT): the pipeline loads them and runs again."""
    await limiter.check_many([("p", "r", "s", RATE)])
    await redis.script_flush()
    decisions = await limiter.check_many([("p", "r", "s", RATE), ("p", "r", "t", RATE)])
    assert [(d.allowed, d.remaining) for d in decisions if d is not None] == [(True, 1), (True, 2)]


async def test_many_checks_fail_open_together() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    try:
        assert await Limiter(dead, timeout_ms=250).check_many([("p", "r", "s", RATE)] * 3) == [None] * 3
    finally:
        await dead.aclose()


async def test_many_checks_switched_off_decide_nothing(redis: Redis) -> None:
    limiter = Limiter(redis, timeout_ms=250, enabled=False)
    assert await limiter.check_many([("p", "r", "s", RATE)] * 2) == [None, None]


@pytest.mark.parametrize("retry_after", [None, 7])
def test_header_pairs_are_the_headers_as_raw_asgi_pairs(retry_after: int | None) -> None:
    decision = Decision(retry_after is None, "default", 10, 3, 2, retry_after)
    pairs = [(name.lower().encode(), value.encode()) for name, value in decision.headers().items()]
    assert decision.header_pairs() == pairs
