"""The heartbeat's lean path: ``POST /api/presence/heartbeat`` answered below Starlette, with micro-batched
I/O, because one heartbeat per client every few seconds is by far the busiest call of the service.

Measured (bench/presence_heartbeats.py, 64 clients, one process): through Starlette, the route guard and one
SQL query plus two Redis scripts per request, a heartbeat cost about 1 ms of CPU (~1,000/s per core); bare
uvicorn answering 204 costs 57 µs. This path keeps the same rules but shares the round trips: the
heartbeats that arrive in one loop turn are one batch, answered by one SQL query (their session rows,
``token_hash = ANY``), one rate-limit script call (every bucket of the batch) and one heartbeat script call
(every heartbeat the limit allowed). A request waits once, for its batch; at most two batches run at once,
so that under load the batches grow instead of the round trips. With the service's own HTTP protocol
(:mod:`threadline_presence.protocol`), which answers from the batch's callback below ASGI, one process
handles 5,500-5,900 heartbeats/s at 156-168 µs of CPU each (512 clients, rate limit on).

It takes only the plain case and answers it exactly as the full stack would (same status, headers, metrics
and access-log line): a bearer token whose verification writes nothing (valid, user enabled,
``last_seen_at`` fresh), no ``Origin`` (no CORS), a small JSON body (or none) that is ``{}`` or
``{"status": "online"|"away"|null}``, allowed by the rate limit, Redis answering. Anything else (a cookie,
a bad body, a 401/423/429/503, a session whose ``last_seen_at`` is due) goes to the full application with
the body replayed, which gives the one canonical answer. Every heartbeat test runs through the lean path
(below ASGI, as served); tests/presence/test_heartbeat_fastpath.py runs under both the protocol and ASGI.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from uuid import UUID

import orjson
from prometheus_client import Counter
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline_presence.service import PresenceService
from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.leanpath import Response, plain_request
from threadline_shared.limiter import Decision, Limiter
from threadline_shared.microbatch import MicroBatcher
from threadline_shared.middleware import Headers, RequestRecord, own_headers
from threadline_shared.ratelimit.http import UNDECIDED, Undecided, decide_http_limits, hand_on_decision
from threadline_shared.ratelimit.rules import RuleBook
from threadline_shared.sessions import SessionService, lookup_rows

FAST_HEARTBEATS = Counter(
    "threadline_presence_fast_heartbeats_total",
    "Heartbeats answered by the lean path (the others went through the full application)",
)
HEARTBEAT_PATH = "/api/presence/heartbeat"
MAX_BODY_BYTES = 256
STATUSES = {None: PresenceStatus.ONLINE, "online": PresenceStatus.ONLINE, "away": PresenceStatus.AWAY}

Answer = tuple[Headers | None, Decision | Undecided | None]
"""A heartbeat's response headers (None: hand the request on) and its rate-limit decision (None: no limit, or
failed open), if one was made."""
Job = tuple[str, PresenceStatus]  # bearer token, status
LOOKUP_TIMEOUT_SECONDS = 2.0
DECLINED = "threadline.heartbeat_declined"
"""Scope key set once the lean path has handed a request on, so that it is not tried twice."""


def parse_status(body: bytes) -> PresenceStatus | None:
    """The status of a heartbeat body the fast path may take (7.1: empty = online); None = let the full
    application parse it (and answer 400/422 if it is wrong)."""
    if not body:
        return PresenceStatus.ONLINE
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not set(data) <= {"status"}:
        return None
    status = data.get("status")
    return STATUSES.get(status) if status is None or isinstance(status, str) else None


class Heartbeats:
    """The lean path's rules and batches; served by :class:`HeartbeatFastPath` (ASGI) and, below ASGI, by
    :class:`threadline_presence.protocol.PresenceHttpProtocol`."""

    def __init__(self, service: str, app_state: State) -> None:
        """``app_state``: the application's state (its ``settings`` and ``clock``)."""
        self.app_state = app_state
        self.sessions: SessionService | None = None
        self.presence: PresenceService | None = None
        self.limiter: Limiter | None = None
        self.rules: RuleBook | None = None
        # Two batches in flight: one waits on PostgreSQL or Redis while the other's answers are written.
        # Measured (512 clients): one in flight left the process idle 15% of the time at 4,500/s.
        self._jobs: MicroBatcher[Job, Answer] = MicroBatcher(self._run, max_in_flight=2)
        self._record = RequestRecord(service, "POST", HEARTBEAT_PATH, 204)

    @staticmethod
    def candidate(scope: Scope) -> bool:
        """Whether the lean path may look at the request (the rest always goes the full way)."""
        return (
            scope["type"] == "http"
            and scope["path"] == HEARTBEAT_PATH
            and scope["method"] == "POST"
            and "state" in scope
            and DECLINED not in scope
        )

    async def answer(self, scope: Scope, token: str, status: PresenceStatus) -> Headers | None:
        """The response headers of a heartbeat made here, or None to hand the request on (after which
        :data:`DECLINED` is in ``scope``)."""
        future = self.submit(scope, token, status)
        with contextlib.suppress(Exception):
            await future
        return self.outcome(scope, future)

    def submit(self, scope: Scope, token: str, status: PresenceStatus) -> asyncio.Future[Answer]:
        """Queue the heartbeat for the next batch; read the future with :meth:`outcome`."""
        state = scope["state"]
        if self.sessions is None or self.sessions.pool is not state["pool"]:  # first request, or new lifespan
            self.sessions = SessionService(state["pool"], self.app_state.settings, self.app_state.clock)
            self.presence, self.limiter, self.rules = state["presence"], state["limiter"], state["rules"]
        return self._jobs.enqueue((token, status))

    @staticmethod
    def outcome(scope: Scope, future: asyncio.Future[Answer]) -> Headers | None:
        """The headers from a done :meth:`submit` future, or None (and :data:`DECLINED` set) when the full
        application has to answer; a failed batch is such a case: the full path meets the same failure and
        answers it (503, ...). A rate-limit decision already made goes with the request (``DECIDED``), so
        that the full path does not charge it again."""
        failed = future.cancelled() or future.exception() is not None
        headers, decision = (None, UNDECIDED) if failed else future.result()
        if headers is None:
            scope[DECLINED] = True
            hand_on_decision(scope, decision)
        return headers

    def begin(self, scope: Scope, body: bytes) -> tuple[asyncio.Future[Answer], bytes | None] | None:
        """For :class:`~threadline_shared.leanpath.LeanHttpProtocol`: submit a plain heartbeat whose whole
        body is ``body``; None = the application answers."""
        plain = plain_request(scope, MAX_BODY_BYTES)
        status = parse_status(body) if plain is not None else None
        if plain is None or status is None:
            return None
        return self.submit(scope, plain[0], status), plain[1]

    def respond(self, scope: Scope, future: asyncio.Future[Answer]) -> Response | None:
        headers = self.outcome(scope, future)
        return None if headers is None else (204, headers, b"")

    def finished(self, scope: Scope, response: Response, request_id: bytes, started: float) -> None:
        """Count and log a heartbeat answered here, as the full application's middleware would."""
        self._record.finished(HEARTBEAT_PATH, request_id, started)
        FAST_HEARTBEATS.inc()

    async def _run(self, jobs: Sequence[Job]) -> list[Answer]:
        """One batch: the session rows, then the rate limit, then the heartbeats that passed both."""
        assert self.sessions is not None and self.rules is not None
        assert self.limiter is not None and self.presence is not None
        async with asyncio.timeout(LOOKUP_TIMEOUT_SECONDS):  # else a stuck query would hold every heartbeat
            rows = await lookup_rows(self.sessions.pool, [token for token, _ in jobs])
        answers: list[Answer] = [(None, UNDECIDED)] * len(jobs)
        made: list[tuple[int, UUID, PresenceStatus]] = []  # (job index, user, status) of settled sessions
        for index, ((_, status), row) in enumerate(zip(jobs, rows, strict=True)):
            if self.sessions.settled(row):
                assert row is not None
                made.append((index, row["user_id"], status))
        passed: list[tuple[int, UUID, PresenceStatus]] = []
        decisions = await decide_http_limits(  # fails open by itself
            self.rules, self.limiter, "POST", [(HEARTBEAT_PATH, user_id) for _, user_id, _ in made]
        )
        for job, decision in zip(made, decisions, strict=True):
            if decision is not None and not decision.allowed:
                answers[job[0]] = (None, decision)  # the full application answers the 429
                continue
            passed.append(job)
            answers[job[0]] = (decision.header_pairs() if decision is not None else [], decision)
        if passed:  # in arrival order: a user's later heartbeat in the batch decides their status
            try:
                await self.presence.heartbeats([(user_id, status) for _, user_id, status in passed])
            except Exception:  # the full path answers (503, ...), charged by the decisions made here
                return [(None, decision) for _, decision in answers]
        return answers


class HeartbeatFastPath:
    """ASGI middleware in front of the presence application's own middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp, heartbeats: Heartbeats) -> None:
        self.app = app
        self.heartbeats = heartbeats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plain = plain_request(scope, MAX_BODY_BYTES) if self.heartbeats.candidate(scope) else None
        if plain is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        messages, body = await _read_body(receive)
        status = parse_status(body) if body is not None else None
        rate_limit = await self.heartbeats.answer(scope, plain[0], status) if status is not None else None
        if rate_limit is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        headers, request_id = own_headers(rate_limit, plain[1])
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        self.heartbeats.finished(scope, (204, headers, b""), request_id, started)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages read and the whole body, or None for the body when it is not a small complete one
    (the client went away, or sent more than the fast path takes)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that first gives back the messages already read, then the real ones."""
    queue = list(messages)

    async def replayed() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replayed
