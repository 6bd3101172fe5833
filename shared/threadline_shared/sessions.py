"""Sessions (contract 3.5-3.8): issue, verify, rotate and revoke opaque tokens stored as SHA-256.

Every service verifies sessions through :class:`SessionService`, so the api, the streamer and presence apply
the same rules: a token is valid while not revoked and before both deadlines; use never extends a session; a
cookie-authenticated request in the second half of the idle window rotates it (exactly one of several racing
requests does: the one whose conditional ``UPDATE`` revokes the old row); an expired token is revoked with its
reason; a disabled user's token is revoked and answered 423. Session times come from the injected clock.

Racing requests: a request that *arrived* before an implicit rotation took effect runs under the old session
even if it is verified just after (``rotated_wall_at``, real wall-clock time, against the request's arrival);
any request that arrives later with the old token gets 401 at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import asyncpg

from threadline_shared.clock import Clock
from threadline_shared.db import Conn
from threadline_shared.errors import InvalidSession, SessionExpired, UserDisabled
from threadline_shared.ids import csrf_token, session_token
from threadline_shared.microbatch import MicroBatcher
from threadline_shared.settings import Settings

RevokeReason = Literal[
    "logout", "refresh", "rotated", "max_sessions", "idle_expired", "absolute_expired", "user_disabled"
]
# last_seen_at is written at most this often per session, so reads do not each cost a write.
LAST_SEEN_RESOLUTION = timedelta(seconds=30)

_LOOKUP = """
SELECT s.id, s.user_id, s.issued_at, s.expires_at, s.absolute_expires_at, s.last_seen_at, s.revoked_at,
       s.revoked_reason, s.rotated_wall_at, u.username, u.email, u.display_name, u.roles, u.disabled_at
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_hash = $1
"""
_LOOKUP_MANY = _LOOKUP.replace("WHERE s.token_hash = $1", "WHERE s.token_hash = ANY($1::bytea[])").replace(
    "SELECT s.id,", "SELECT s.token_hash, s.id,"
)
_INSERT = """
INSERT INTO sessions (user_id, token_hash, issued_at, expires_at, absolute_expires_at, last_seen_at)
VALUES ($1, $2, $3, $4, $5, $3)
RETURNING id
"""
_REVOKE = """
UPDATE sessions SET revoked_at = $2, revoked_reason = $3
WHERE id = $1 AND revoked_at IS NULL
RETURNING id
"""
_EVICT_BEYOND_LIMIT = """
UPDATE sessions SET revoked_at = $2, revoked_reason = 'max_sessions'
WHERE id IN (
    SELECT id FROM sessions
    WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND absolute_expires_at > $2
    ORDER BY issued_at DESC, id DESC
    OFFSET $3
)
"""


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request runs as: the user (read fresh on every request) and the session it uses."""

    user_id: UUID
    username: str
    email: str
    display_name: str | None
    roles: tuple[str, ...]
    session_id: UUID
    issued_at: datetime
    expires_at: datetime
    absolute_expires_at: datetime
    via_cookie: bool

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session: the token and CSRF token exist only here and in the response that carries them."""

    principal: Principal
    token: str
    csrf_token: str


class SessionLookups:
    """Session rows of concurrent requests in one query per loop turn (:mod:`threadline_shared.microbatch`).
    One per application; requests may come with different pools (a test may run several apps)."""

    def __init__(self) -> None:
        self._batcher: MicroBatcher[tuple[asyncpg.Pool, str], asyncpg.Record | None] = MicroBatcher(self._run)

    async def row(self, pool: asyncpg.Pool, token: str) -> asyncpg.Record | None:
        return await self._batcher.submit((pool, token))

    @staticmethod
    async def _run(items: Sequence[tuple[asyncpg.Pool, str]]) -> list[asyncpg.Record | None]:
        pools = {id(pool): pool for pool, _ in items}
        found: dict[tuple[int, str], asyncpg.Record | None] = {}
        for key, pool in pools.items():
            tokens = [token for item_pool, token in items if id(item_pool) == key]
            for token, row in zip(tokens, await lookup_rows(pool, tokens), strict=True):
                found[key, token] = row
        return [found[id(pool), token] for pool, token in items]


async def lookup_rows(pool: asyncpg.Pool, tokens: Sequence[str]) -> list[asyncpg.Record | None]:
    """The session rows (joined with their users) of ``tokens``, in order, in one query; None = unknown."""
    hashes = [hash_token(token) for token in tokens]
    rows = {row["token_hash"]: row for row in await pool.fetch(_LOOKUP_MANY, list(set(hashes)))}
    return [rows.get(digest) for digest in hashes]


class SessionService:
    def __init__(
        self, pool: asyncpg.Pool, settings: Settings, clock: Clock, lookups: SessionLookups | None = None
    ) -> None:
        """``lookups``: share the session query with concurrent requests (None: one query per call)."""
        self.pool = pool
        self.lookups = lookups
        self.clock = clock
        self.idle = timedelta(seconds=settings.session_idle_seconds)
        self.absolute = timedelta(seconds=settings.session_absolute_seconds)
        self.max_per_user = settings.session_max_per_user

    async def verify(
        self, token: str, *, via_cookie: bool, allow_rotation: bool = True, arrived_at: datetime | None = None
    ) -> Principal | IssuedSession:
        """Check ``token``; return the principal, or the successor session when this request rotated it.

        ``arrived_at`` (wall clock) lets a request that raced an implicit rotation run under the old session.
        Raises InvalidSession, SessionExpired or UserDisabled (contract 3.8).
        """
        now = self.clock.now()
        if self.lookups is not None:
            row = await self.lookups.row(self.pool, token)
        else:
            row = await self.pool.fetchrow(_LOOKUP, hash_token(token))
        if row is None:
            raise InvalidSession()
        if row["revoked_at"] is not None:
            if (
                row["revoked_reason"] == "rotated"
                and arrived_at is not None
                and arrived_at < row["rotated_wall_at"]
            ):
                return _principal(row, via_cookie)  # raced the rotation: runs under the old session
            raise InvalidSession()
        if now >= row["absolute_expires_at"] or now >= row["expires_at"]:
            reason: RevokeReason = "absolute_expired" if now >= row["absolute_expires_at"] else "idle_expired"
            await self.pool.execute(_REVOKE, row["id"], now, reason)
            raise SessionExpired()
        if row["disabled_at"] is not None:
            await self.pool.execute(_REVOKE, row["id"], now, "user_disabled")
            raise UserDisabled()
        principal = _principal(row, via_cookie)
        if via_cookie and allow_rotation and row["expires_at"] - now <= self.idle / 2:
            successor = await self.rotate(principal, "rotated")
            if successor is not None:
                return successor
        if row["last_seen_at"] is None or now - row["last_seen_at"] >= LAST_SEEN_RESOLUTION:
            await self.pool.execute("UPDATE sessions SET last_seen_at = $2 WHERE id = $1", row["id"], now)
        return principal

    def settled_bearer(self, row: asyncpg.Record | None) -> Principal | None:
        """The principal of a bearer request whose :meth:`verify` would succeed *and write nothing*: valid,
        user enabled, ``last_seen_at`` fresh. None means "not that simple": call :meth:`verify`, which gives
        the answer (401, 423) or does the write."""
        return _principal(row, False) if row is not None and self.settled(row) else None

    def settled(self, row: asyncpg.Record | None) -> bool:
        """Whether :meth:`settled_bearer` gives a principal for ``row`` (without building it)."""
        return self.verdict(row, via_cookie=False) is True

    def verdict(self, row: asyncpg.Record | None, *, via_cookie: bool) -> bool | None:
        """For a lean path that does not call :meth:`verify`: True when verify would accept ``row`` and write
        nothing; False when it would accept it and only refresh ``last_seen_at`` (write that with
        :meth:`touch`); None when verify has to decide (it rejects, revokes or rotates)."""
        if row is None or row["revoked_at"] is not None or row["disabled_at"] is not None:
            return None
        now = self.clock.now()
        if now >= row["absolute_expires_at"] or now >= row["expires_at"]:
            return None
        if via_cookie and row["expires_at"] - now <= self.idle / 2:
            return None  # due for rotation
        last_seen = row["last_seen_at"]
        return last_seen is not None and now - last_seen < LAST_SEEN_RESOLUTION

    async def touch(self, session_ids: Sequence[UUID]) -> None:
        """Refresh ``last_seen_at`` of sessions a lean path accepted, as :meth:`verify` does one by one."""
        await self.pool.execute(
            "UPDATE sessions SET last_seen_at = $2 WHERE id = ANY($1::uuid[])",
            list(session_ids),
            self.clock.now(),
        )

    async def issue(self, user_row: asyncpg.Record, *, via_cookie: bool = True) -> IssuedSession:
        """Log in: a new session for the user, then revoke their oldest live sessions beyond the limit."""
        now = self.clock.now()
        absolute = now + self.absolute
        async with self.pool.acquire() as conn, conn.transaction():
            issued = await self._insert(
                conn, user_row, now, min(now + self.idle, absolute), absolute, via_cookie
            )
            await conn.execute(_EVICT_BEYOND_LIMIT, user_row["id"], now, self.max_per_user)
        return issued

    async def rotate(self, principal: Principal, reason: RevokeReason) -> IssuedSession | None:
        """Revoke ``principal``'s session and create its successor; None if another request rotated first."""
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            won = await conn.fetchval(_REVOKE, principal.session_id, now, reason)
            if won is None:
                return None
            if reason == "rotated":
                wall = datetime.now(UTC)
                await conn.execute(
                    "UPDATE sessions SET rotated_wall_at = $2 WHERE id = $1", principal.session_id, wall
                )
            user = await conn.fetchrow(
                "SELECT id, username, email, display_name, roles FROM users WHERE id = $1", principal.user_id
            )
            assert user is not None
            expires = min(now + self.idle, principal.absolute_expires_at)
            issued = await self._insert(
                conn, user, now, expires, principal.absolute_expires_at, principal.via_cookie
            )
            await conn.execute(
                "UPDATE sessions SET successor_id = $2 WHERE id = $1",
                principal.session_id,
                issued.principal.session_id,
            )
        return issued

    async def revoke(self, session_id: UUID, reason: RevokeReason) -> bool:
        return await self.pool.fetchval(_REVOKE, session_id, self.clock.now(), reason) is not None

    async def current_in_chain(self, session_id: UUID) -> UUID:
        """The newest session of ``session_id``'s rotation chain (the streamer re-checks this one)."""
        newest: UUID = await self.pool.fetchval(
            """
            WITH RECURSIVE chain(id, successor_id, depth) AS (
                SELECT id, successor_id, 0 FROM sessions WHERE id = $1
                UNION ALL
                SELECT s.id, s.successor_id, c.depth + 1 FROM sessions s JOIN chain c ON s.id = c.successor_id
            )
            SELECT id FROM chain ORDER BY depth DESC LIMIT 1
            """,
            session_id,
        )
        return newest

    @staticmethod
    async def _insert(
        conn: Conn,
        user: asyncpg.Record,
        now: datetime,
        expires: datetime,
        absolute: datetime,
        via_cookie: bool,
    ) -> IssuedSession:
        token = session_token()
        session_id = await conn.fetchval(_INSERT, user["id"], hash_token(token), now, expires, absolute)
        principal = Principal(
            user_id=user["id"],
            username=user["username"],
            email=user["email"],
            display_name=user["display_name"],
            roles=tuple(sorted(user["roles"])),
            session_id=session_id,
            issued_at=now,
            expires_at=expires,
            absolute_expires_at=absolute,
            via_cookie=via_cookie,
        )
        return IssuedSession(principal, token, csrf_token())


def _principal(row: asyncpg.Record, via_cookie: bool) -> Principal:
    return Principal(
        user_id=row["user_id"],
        username=row["username"],
        email=row["email"],
        display_name=row["display_name"],
        roles=tuple(sorted(row["roles"])),
        session_id=row["id"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        absolute_expires_at=row["absolute_expires_at"],
        via_cookie=via_cookie,
    )
