"""Redis client helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

MAX_CONNECTIONS = 100
"""Connections one client (one process) opens at most; more calls at once wait their turn for a free one."""


def create_redis(redis_url: str, *, timeout_seconds: float = 2.0) -> Redis:
    """A lazily connecting client; connecting, or waiting for a free pooled connection, gives up after
    ``timeout_seconds`` (a redis-py ``ConnectionError``).

    The pool is redis-py's ``BlockingConnectionPool``: with its default pool, the 101st call in flight failed
    at once with ``MaxConnectionsError``, so a burst of requests made the rate limiter fail open (the burst
    passed unlimited) and presence answer 503. Now such a call waits for a connection to come back.

    No ``socket_timeout``: with it redis-py wraps every read in ``asyncio.wait_for``, which on Python 3.11
    can swallow a cancellation and so hang a background task at shutdown. Callers bound their commands with
    ``asyncio.timeout`` instead (the limiter, the presence store, the snapshot).
    """
    pool = BlockingConnectionPool.from_url(
        redis_url,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        decode_responses=False,
    )
    client: Redis = Redis.from_pool(pool)
    return client


class PackedScript:
    """A Lua script run by ``EVALSHA`` with a hand-packed command, loaded only when Redis answers NOSCRIPT.

    For the hottest scripts (the rate limit and the presence heartbeat, called with a whole batch): redis-py
    packs a command argument by argument through its encoder, which measured about 8% of the presence
    process's CPU at 5,000 heartbeats/s (six arguments per heartbeat); packing the command in one pass costs
    a fraction of that. The connection comes from the client's pool; a call that fails or is cancelled
    before its reply leaves no reply behind for the next command.
    """

    def __init__(self, redis: Redis, source: str) -> None:
        self.redis = redis
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest().encode()

    async def __call__(self, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        parts = [b"EVALSHA", self.sha, b"%d" % len(keys), *map(str.encode, keys), *map(_argument, args)]
        packed = b"*%d\r\n%b" % (len(parts), b"".join([b"$%d\r\n%b\r\n" % (len(p), p) for p in parts]))
        try:
            return await self._loaded(packed)
        except _Lost:
            # A pooled connection that Redis closed (a restart): one more try, on a new connection, as
            # redis-py retries its own commands. Without it the first calls after a restart failed. A call
            # that got no connection at all (Redis down, or none free in time) is not tried again.
            return await self._loaded(packed)

    async def _loaded(self, packed: bytes) -> Any:
        try:
            return await self._execute(packed)
        except NoScriptError:  # Redis restarted (or flushed its scripts) since the last load
            await self.redis.script_load(self.source)
            return await self._execute(packed)

    async def _execute(self, packed: bytes) -> Any:
        pool = self.redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:  # on a failure or cancellation, redis-py disconnects the connection itself (tested)
            await connection.send_packed_command(packed, check_health=False)
            return await connection.read_response()
        except RedisConnectionError as exc:
            raise _Lost(*exc.args) from exc
        finally:
            await pool.release(connection)


class _Lost(RedisConnectionError):
    """The connection failed while in use (not while it was being got)."""


def _argument(value: str | int) -> bytes:
    return b"%d" % value if isinstance(value, int) else value.encode()
