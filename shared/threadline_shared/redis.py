"""Redis client helper."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(redis_url: str, *, timeout_seconds: float = 2.0) -> Redis:
    """A lazily connecting client; commands fail fast (``timeout_seconds``) when Redis is down."""
    client: Redis = Redis.from_url(
        redis_url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        decode_responses=False,
    )
    return client
