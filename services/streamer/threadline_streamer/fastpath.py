"""The stream connect's lean path: a plain ``GET /api/stream/conversations/{id}`` set up with micro-batched
I/O and answered below ASGI by the streamer's HTTP protocol (:mod:`threadline_streamer.transport`).

Through Starlette a connect cost the streamer about 1.8 ms of CPU (bench/streamer_fanout.py: 390-470
connects/s with the process at 83% of a core): the middleware and route stack, a session query, a membership
query and three writes per connection. Here the connects that arrive in one loop turn are one batch: one
query reads, for each, the session, the membership and the conversation's ``last_seq``; one more refreshes
stale ``last_seen_at`` values; one script call decides the rate limits. Each accepted connection then
subscribes at once (:meth:`Hub.subscribe_at`: no query of its own) and gets its response head, ``retry:``
and the snapshot in one write. One batch runs at a time, so that under load the batches grow instead of the
queries. Measured (10,000 connects over 100 conversations of 100 members, 512 in flight): 1,870-1,990
connects/s at 440-480 µs of streamer CPU each; with two batches in flight, 1,440-1,720/s at 500-630 µs.

It takes only the plain case and answers it exactly as the full application would (same status, headers,
stream, metrics and access-log line): a new stream (no ``Last-Event-ID``, no query string), a bearer token or
session cookie that :meth:`SessionService.verify` would accept without rejecting, revoking or rotating it, a
participant, no ``Origin`` (no CORS), no body, allowed by the rate limit. Anything else (a resume with its
replay, a 401/403/404/423/429, a cookie due for rotation) goes to the full application, which gives the one
canonical answer; a rate-limit decision made here goes with it (``DECIDED``), so it is not charged twice.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prometheus_client import Counter
from starlette.datastructures import State
from starlette.requests import cookie_parser
from starlette.types import Scope

from threadline_shared.auth import SESSION_COOKIE, bearer_token
from threadline_shared.limiter import Decision
from threadline_shared.microbatch import MicroBatcher
from threadline_shared.middleware import Headers, RequestRecord
from threadline_shared.ratelimit.http import UNDECIDED, Undecided, decide_http_limits, hand_on_decision
from threadline_shared.sessions import SessionService, hash_token
from threadline_streamer.connection import Connection
from threadline_streamer.hub import Hub
from threadline_streamer.snapshot import Snapshotter
from threadline_streamer.wire import retry_frame

log = logging.getLogger(__name__)

FAST_CONNECTS = Counter(
    "threadline_streamer_fast_connects_total",
    "Streams set up by the lean connect path (the others went through the full application)",
)
ROUTE = "/api/stream/conversations/{conversation_id}"
_PATH = re.compile(r"/api/stream/conversations/([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})")
LOOKUP_TIMEOUT_SECONDS = 2.0
DECLINED = "threadline.connect_declined"
"""Scope key set once the lean path has handed a request on (a marker: the request is then the full
application's)."""
STREAM_HEADERS: Headers = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
]
"""The stream response's own headers, in the order the full application sends them."""

_LOOKUP = """
SELECT r.n, s.id, s.user_id, s.expires_at, s.absolute_expires_at, s.last_seen_at, s.revoked_at,
       s.disabled_at, s.last_seq
FROM unnest($1::bytea[], $2::uuid[]) WITH ORDINALITY AS r (token_hash, conversation_id, n)
CROSS JOIN LATERAL (
    SELECT s.id, s.user_id, s.expires_at, s.absolute_expires_at, s.last_seen_at, s.revoked_at,
           u.disabled_at, c.last_seq
    FROM sessions s
    JOIN users u ON u.id = s.user_id
    JOIN participants p
        ON p.conversation_id = r.conversation_id AND p.user_id = s.user_id AND p.left_at IS NULL
    JOIN conversations c ON c.id = r.conversation_id
    WHERE s.token_hash = r.token_hash
    LIMIT 1
) s
"""
"""One index probe per connect, whatever the table statistics: the ``LIMIT`` keeps the planner from turning
the lateral subquery into a join (measured: with fresh tables it hashed every active membership, 95 ms for
256 connects)."""


@dataclass(frozen=True, slots=True)
class Job:
    token: str
    via_cookie: bool
    conversation_id: UUID
    path: str


@dataclass(frozen=True, slots=True)
class Accepted:
    """A subscribed connection: its rate-limit headers and what its stream starts with."""

    connection: Connection
    headers: Headers
    prelude: bytes


Answer = Accepted | Decision | Undecided | None
"""Accepted; else the request goes on to the full application, with the rate-limit decision made here (a
denial it answers with the 429; None: no limit, or failed open), if one was made."""


def plain_connect(scope: Scope) -> tuple[Job, bytes | None] | None:
    """The job and ``X-Request-ID`` of a connect the lean path may take, else None (see the module doc)."""
    if scope["query_string"]:
        return None
    matched = _PATH.fullmatch(scope["path"])
    if matched is None:
        return None
    bearer: str | None = None
    cookies: list[str] = []
    request_id: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if bearer is not None:
                return None
            bearer = bearer_token(value)
            if bearer is None:
                return None
        elif name == b"cookie":
            cookies.append(value.decode("latin-1"))
        elif name in (b"last-event-id", b"origin", b"transfer-encoding"):
            return None
        elif name == b"content-length":
            if value != b"0":
                return None
        elif name == b"x-request-id":
            if request_id is not None:
                return None
            request_id = bytes(value)
    conversation_id = UUID(matched.group(1))
    if bearer is not None:  # a bearer token wins and the cookie is ignored (auth.credentials)
        return Job(bearer, False, conversation_id, scope["path"]), request_id
    cookie = cookie_parser("; ".join(cookies)).get(SESSION_COOKIE) if cookies else None
    if not cookie:
        return None
    return Job(cookie, True, conversation_id, scope["path"]), request_id


class Connects:
    """The lean path's rules and batches, served by the streamer's HTTP protocol."""

    def __init__(self, service: str, app_state: State) -> None:
        """``app_state``: the application's state (its ``settings`` and ``clock``)."""
        self.app_state = app_state
        self.sessions: SessionService | None = None
        self._jobs: MicroBatcher[Job, Answer] = MicroBatcher(self._run, max_in_flight=1)  # see the module doc
        self._record = RequestRecord(service, "GET", ROUTE, 200)
        self._state: dict[str, Any] = {}

    @staticmethod
    def candidate(scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith("/api/stream/")
            and "state" in scope
            and DECLINED not in scope
        )

    def submit(self, scope: Scope, job: Job) -> asyncio.Future[Answer]:
        """Queue the connect for the next batch; read the future with :meth:`outcome`."""
        state = scope["state"]
        if self.sessions is None or self.sessions.pool is not state["pool"]:  # first request, or new lifespan
            self.sessions = SessionService(state["pool"], self.app_state.settings, self.app_state.clock)
            self._state = state
        return self._jobs.enqueue(job)

    @staticmethod
    def outcome(scope: Scope, future: asyncio.Future[Answer]) -> Accepted | None:
        """The accepted connection from a done :meth:`submit` future, or None (and :data:`DECLINED` set)
        when the full application has to answer, with the rate-limit decision made here, if any."""
        failed = future.cancelled() or future.exception() is not None
        answer = UNDECIDED if failed else future.result()
        if isinstance(answer, Accepted):
            return answer
        scope[DECLINED] = True
        hand_on_decision(scope, answer)
        return None

    def finished(self, path: str, request_id: bytes, started: float) -> None:
        """Count and log a connect set up here, as the full application's middleware would."""
        self._record.finished(path, request_id, started)
        FAST_CONNECTS.inc()

    @property
    def hub(self) -> Hub:
        hub = self._state["hub"]
        assert isinstance(hub, Hub)
        return hub

    async def _run(self, jobs: Sequence[Job]) -> list[Answer]:
        """One batch; a failed one is logged, and its connects go the full way (which meets the same failure
        and answers it: 503, ...)."""
        try:
            return await self._batch(jobs)
        except Exception as exc:
            log.warning("connect batch failed (%r); %d connects go the full way", exc, len(jobs))
            raise

    async def _batch(self, jobs: Sequence[Job]) -> list[Answer]:
        """Sessions and memberships, stale ``last_seen_at``, rate limits; then subscribe each accepted
        connection and give it the snapshot."""
        sessions, state = self.sessions, self._state
        assert sessions is not None
        async with asyncio.timeout(LOOKUP_TIMEOUT_SECONDS):  # else a stuck query would hold every connect
            rows = await sessions.pool.fetch(
                _LOOKUP, [hash_token(job.token) for job in jobs], [job.conversation_id for job in jobs]
            )
        found = {row["n"] - 1: row for row in rows}
        answers: list[Answer] = [UNDECIDED] * len(jobs)
        accepted: list[int] = []
        stale: list[UUID] = []
        for index, job in enumerate(jobs):
            verdict = sessions.verdict(found.get(index), via_cookie=job.via_cookie)
            if verdict is not None:
                accepted.append(index)
                if not verdict:
                    stale.append(found[index]["id"])
        if stale:
            async with asyncio.timeout(LOOKUP_TIMEOUT_SECONDS):
                await sessions.touch(stale)
        decisions = await decide_http_limits(  # fails open by itself
            state["rules"],
            state["limiter"],
            "GET",
            [(jobs[index].path, found[index]["user_id"]) for index in accepted],
        )
        queue_size, retry = self.app_state.settings.stream_queue_size, self.app_state.settings.stream_retry_ms
        hub, snapshotter = self.hub, state["snapshot"]
        assert isinstance(snapshotter, Snapshotter)
        connections: list[tuple[int, Connection, Headers]] = []
        for index, decision in zip(accepted, decisions, strict=True):
            if decision is not None and not decision.allowed:
                answers[index] = decision  # the full application answers the 429
                continue
            row = found[index]
            job = jobs[index]
            connection = Connection(job.conversation_id, row["user_id"], row["id"], queue_size)
            # Subscribed before the snapshot is read (see Snapshotter).
            if not hub.subscribe_at(connection, row["last_seq"]):
                answers[index] = decision  # a membership change overtook the read: the full path checks
                continue
            connections.append((index, connection, decision.header_pairs() if decision is not None else []))
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_SECONDS):  # one batch at a time: never wait forever
                snapshots = await self._snapshots([c for _, c, _ in connections], snapshotter)
        except BaseException as exc:
            for index, connection, _ in connections:
                hub.unsubscribe(connection)
                answers[index] = decisions[accepted.index(index)]  # the full path meets it, not charged again
            if not isinstance(exc, Exception):
                raise
            log.warning("connect batch: no snapshot (%r); %d connects go the full way", exc, len(connections))
            return answers
        for index, connection, headers in connections:
            prelude = retry_frame(retry) + snapshots[connection.conversation_id]
            answers[index] = Accepted(connection, headers, prelude)
        return answers

    @staticmethod
    async def _snapshots(connections: list[Connection], snapshotter: Snapshotter) -> dict[UUID, bytes]:
        """Each conversation's snapshot: the cached one, or one build shared by its connections."""
        snapshots: dict[UUID, bytes] = {}
        missing: dict[UUID, Connection] = {}
        for connection in connections:
            conversation_id = connection.conversation_id
            if conversation_id not in snapshots and conversation_id not in missing:
                cached = snapshotter.cached(conversation_id)
                if cached is None:
                    missing[conversation_id] = connection
                else:
                    snapshots[conversation_id] = cached
        if missing:
            built = await asyncio.gather(*(snapshotter(connection) for connection in missing.values()))
            snapshots.update(zip(missing, built, strict=True))
        return snapshots
