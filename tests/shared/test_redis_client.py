"""The services' Redis client (``create_redis``): a burst of more calls than it holds connections is served
(the calls wait their turn for a bounded time) instead of failing, and cancelled calls give their connections
back."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from threadline_shared.limiter import Limiter, Rate
from threadline_shared.redis import MAX_CONNECTIONS, PackedScript, create_redis

BURST = 3 * MAX_CONNECTIONS
ECHO = "return ARGV[1]"


def opened(client: Redis) -> tuple[int, int]:
    """(connections in use, connections opened) of the client's pool."""
    pool = client.connection_pool
    in_use = len(pool._in_use_connections)
    return in_use, in_use + len(pool._available_connections)


async def test_a_burst_of_rate_limit_decisions_beyond_the_pool_is_decided_not_failed_open(
    redis_url: str,
) -> None:
    """A limiter that fails open under a burst would let the burst through unlimited (contract 8)."""
    client = create_redis(redis_url)
    try:
        limiter = Limiter(client, timeout_ms=10_000)
        subject = uuid.uuid4().hex
        rate = Rate(requests_per_second=1, burst=BURST)

        decisions = await asyncio.gather(*(limiter.check("burst", "/r", subject, rate) for n in range(BURST)))

        assert all(decision is not None for decision in decisions)
        assert sum(decision.allowed for decision in decisions if decision is not None) == BURST
        in_use, total = opened(client)
        assert in_use == 0 and total <= MAX_CONNECTIONS
    finally:
        await client.aclose()


async def test_a_burst_of_plain_commands_beyond_the_pool_all_succeed(redis_url: str) -> None:
    client = create_redis(redis_url)
    key = f"burst:{uuid.uuid4().hex}"
    try:
        counts = await asyncio.gather(*(client.incr(key) for _ in range(BURST)))

        assert sorted(counts) == list(range(1, BURST + 1))
        assert 0 < opened(client)[1] <= MAX_CONNECTIONS
    finally:
        await client.delete(key)
        await client.aclose()


async def test_a_call_waits_for_a_free_connection_no_longer_than_the_timeout(redis_url: str) -> None:
    client = create_redis(redis_url, timeout_seconds=0.2)
    pool = client.connection_pool
    held = [await pool.get_connection() for _ in range(MAX_CONNECTIONS)]
    try:
        started = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await client.ping()
        assert 0.15 <= time.monotonic() - started < 2.0

        waiting = asyncio.create_task(PackedScript(client, ECHO)([], ["served"]))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # no connection yet: it waits instead of failing
        await pool.release(held.pop())
        assert await waiting == b"served"
    finally:
        for connection in held:
            await pool.release(connection)
        await client.aclose()


async def test_calls_cancelled_while_waiting_or_running_give_their_connections_back(redis_url: str) -> None:
    """Callers bound their calls with ``asyncio.timeout``: a cancelled call must not keep its connection, or
    the pool would shrink until every call waits in vain."""
    client = create_redis(redis_url)
    script = PackedScript(client, ECHO)
    chance = random.Random(5)

    async def bounded(n: int) -> None:
        try:
            async with asyncio.timeout(chance.uniform(0, 0.004)):
                if n % 2:
                    await script([], [str(n)])
                else:
                    await client.get(f"cancel:{n}")
        except TimeoutError:
            pass

    try:
        for _ in range(3):
            await asyncio.gather(*(bounded(n) for n in range(BURST)))
        assert opened(client)[0] == 0
        assert 0 < opened(client)[1] <= MAX_CONNECTIONS
        assert await asyncio.gather(*(script([], [str(n)]) for n in range(BURST))) == [
            str(n).encode() for n in range(BURST)
        ]
    finally:
        await client.aclose()
