"""Redis client helper."""

from __future__ import annotations

from redis.asyncio import Redis


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
