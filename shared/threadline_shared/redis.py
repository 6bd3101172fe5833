"""Redis client helper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT


def create_redis(redis_url: str, *, timeout_seconds: float = 2.0) -> Redis:
    """A lazily connecting client; connecting gives up after ``timeout_seconds`` when Redis is down.

    No ``socket_timeout``: with it redis-py wraps every read in ``asyncio.wait_for``, which on Python 3.11
    can swallow a cancellation and so hang a background task at shutdown. Callers bound their commands with
    ``asyncio.timeout`` instead (the limiter, the presence store, the snapshot).
    """
    client: Redis = Redis.from_url(
        redis_url,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        decode_responses=False,
    )
    return client


async def run_script_many(
    redis: Redis, script: AsyncScript, calls: Sequence[tuple[Sequence[KeyT], Sequence[EncodableT]]]
) -> list[Any]:
    """Run ``script`` once per ``(keys, args)`` in one pipeline of ``EVALSHA``; the answers in order.

    redis-py's own way (``script(keys, args, client=pipe)``) asks ``SCRIPT EXISTS`` before every pipeline, a
    second round trip; here the script is loaded only when Redis answers ``NOSCRIPT`` (after a restart).
    """
    for attempt in (1, 2):
        async with redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                answers: list[Any] = await pipe.execute()
                return answers
            except NoScriptError:
                if attempt == 2:
                    raise
        await redis.script_load(script.script)
    raise AssertionError("unreachable")
