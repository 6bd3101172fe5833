"""PackedScript: EVALSHA with a hand-packed command on the client's pool (threadline_shared.redis)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from threadline_shared.redis import PackedScript

ECHO = "return {KEYS[1], ARGV[1], ARGV[2], #KEYS, #ARGV}"
# Busy for about 200 ms of the Redis clock, then answers its argument.
SLOW = """
local t = redis.call('TIME')
local start = tonumber(t[1]) * 1000000 + tonumber(t[2])
repeat t = redis.call('TIME') until tonumber(t[1]) * 1000000 + tonumber(t[2]) - start > 200000
return ARGV[1]
"""


async def test_arguments_arrive_as_sent_including_non_ascii_and_numbers(redis: Redis) -> None:
    echo = PackedScript(redis, ECHO)
    assert await echo(["k:é"], ["ü → x", 12345678901234]) == [
        "k:é".encode(),
        "ü → x".encode(),
        b"12345678901234",
        1,
        2,
    ]


async def test_the_script_is_loaded_again_after_a_flush(redis: Redis) -> None:
    echo = PackedScript(redis, ECHO)
    assert (await echo(["a"], ["1", "2"]))[1] == b"1"
    await redis.script_flush()
    assert (await echo(["a"], ["3", "4"]))[1] == b"3"


async def test_an_error_reply_is_raised_and_the_connection_stays_usable(redis_url: str) -> None:
    client = Redis.from_url(redis_url, max_connections=1)
    try:
        failing = PackedScript(client, "return redis.error_reply('nope')")
        with pytest.raises(Exception, match="nope"):
            await failing([], [])
        assert (await PackedScript(client, ECHO)(["k"], ["v", "w"]))[1] == b"v"
    finally:
        await client.aclose()


async def test_a_call_cancelled_before_its_reply_leaves_no_reply_for_the_next_call(redis_url: str) -> None:
    client = Redis.from_url(redis_url, max_connections=1)  # the next call gets the same pooled connection
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await PackedScript(client, SLOW)([], ["slow"])
        assert (await PackedScript(client, ECHO)(["k"], ["fresh", "x"]))[1] == b"fresh"
    finally:
        await client.aclose()


async def test_a_pooled_connection_that_redis_closed_is_replaced_within_the_call(
    redis: Redis, redis_url: str
) -> None:
    """As after a Redis restart: the server closed the pooled connections; the call still answers."""
    client = Redis.from_url(redis_url, max_connections=1)
    try:
        echo = PackedScript(client, ECHO)
        assert (await echo(["k"], ["before", "x"]))[1] == b"before"
        name = f"packed-{id(client)}"
        await client.client_setname(name)
        pooled = next(entry["id"] for entry in await redis.client_list() if entry["name"] == name)
        await redis.client_kill_filter(_id=pooled)
        assert (await echo(["k"], ["after", "x"]))[1] == b"after"
    finally:
        await client.aclose()
