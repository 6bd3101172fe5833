"""The heartbeat's lean path: ``POST /api/presence/heartbeat`` answered below Starlette, with micro-batched
I/O, because one heartbeat per client every few seconds is by far the busiest call of the service.

Measured (bench/presence_heartbeats.py, 64 clients, one process): through Starlette, the route guard and one
SQL query plus two Redis scripts per request, a heartbeat cost about 1 ms of CPU (~1,000/s per core); bare
uvicorn answering 204 costs 57 µs. This path keeps the same rules but shares the round trips: the session
rows of every heartbeat in one loop turn come from one query (``token_hash = ANY``), their rate-limit
decisions from one Redis pipeline, their heartbeat scripts from another.

It takes only the plain case and answers it exactly as the full stack would (same status, headers, metrics
and access-log line): a bearer token whose verification writes nothing (valid, user enabled,
``last_seen_at`` fresh), no ``Origin`` (no CORS), a small JSON body (or none) that is ``{}`` or
``{"status": "online"|"away"|null}``, allowed by the rate limit, Redis answering. Anything else (a cookie,
a bad body, a 401/423/429/503, a session whose ``last_seen_at`` is due) goes to the full application with
the body replayed, which gives the one canonical answer. Every heartbeat test runs through both paths.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline_presence.service import PresenceService
from threadline_shared.dto.enums import PresenceStatus
from threadline_shared.limiter import Decision, Limiter, Rate
from threadline_shared.logs import request_id_var
from threadline_shared.metrics import HTTP_DURATION, HTTP_REQUESTS
from threadline_shared.microbatch import MicroBatcher
from threadline_shared.middleware import SECURITY_HEADERS, VALID_REQUEST_ID, access_log
from threadline_shared.params import is_json
from threadline_shared.ratelimit.http import http_limit_target
from threadline_shared.ratelimit.rules import RuleBook
from threadline_shared.sessions import SessionLookups, SessionService

FAST_HEARTBEATS = Counter(
    "threadline_presence_fast_heartbeats_total",
    "Heartbeats answered by the lean path (the others went through the full application)",
)
HEARTBEAT_PATH = "/api/presence/heartbeat"
MAX_BODY_BYTES = 256
STATUSES = {None: PresenceStatus.ONLINE, "online": PresenceStatus.ONLINE, "away": PresenceStatus.AWAY}

Bucket = tuple[str, str, str, Rate]
Beat = tuple[uuid.UUID, PresenceStatus]


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


def plain_request(scope: Scope) -> tuple[str, bytes | None] | None:
    """``(bearer token, X-Request-ID)`` when the request's headers allow the fast path, else None. A body
    without a JSON ``Content-Type`` (415), a repeated header and anything unusual go the full way."""
    token: str | None = None
    request_id: bytes | None = None
    length = 0
    json_body = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if token is not None or scheme.lower() != b"bearer" or not credentials.strip():
                return None
            token = credentials.strip().decode("latin-1")
        elif name == b"content-length":
            if not value.isdigit() or int(value) > MAX_BODY_BYTES:
                return None
            length = int(value)
        elif name == b"content-type":
            if json_body or not is_json(value.decode("latin-1")):
                return None
            json_body = True
        elif name in (b"origin", b"transfer-encoding"):
            return None
        elif name == b"x-request-id":
            if request_id is not None:
                return None
            request_id = bytes(value)
    if token is None or (length and not json_body):
        return None
    return token, request_id


class HeartbeatFastPath:
    """ASGI middleware in front of the presence application's own middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self.sessions: SessionService | None = None
        self.presence: PresenceService | None = None
        self.limiter: Limiter | None = None
        self.rules: RuleBook | None = None
        self._limits: MicroBatcher[Bucket, Decision | None] = MicroBatcher(self._check)
        self._beats: MicroBatcher[Beat, Any] = MicroBatcher(self._heartbeat)
        self._requests = HTTP_REQUESTS.labels(service, "POST", HEARTBEAT_PATH, "204")
        self._duration = HTTP_DURATION.labels(service, "POST", HEARTBEAT_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != HEARTBEAT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        plain = plain_request(scope) if "state" in scope else None
        if plain is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        messages, body = await _read_body(receive)
        status = parse_status(body) if body is not None else None
        headers = await self._answer(scope, plain[0], status) if status is not None else None
        if headers is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        given = plain[1]
        request_id = given if given and VALID_REQUEST_ID.match(given) else str(uuid.uuid4()).encode()
        headers += [(b"x-request-id", request_id), *SECURITY_HEADERS]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        elapsed = time.perf_counter() - started
        self._requests.inc()
        self._duration.observe(elapsed)
        FAST_HEARTBEATS.inc()
        if access_log.isEnabledFor(logging.INFO):
            token = request_id_var.set(request_id.decode())
            duration_ms = round(elapsed * 1000, 2)
            extra = {"method": "POST", "path": HEARTBEAT_PATH, "status": 204, "duration_ms": duration_ms}
            access_log.info("request", extra=extra)
            request_id_var.reset(token)

    async def _answer(
        self, scope: Scope, token: str, status: PresenceStatus
    ) -> list[tuple[bytes, bytes]] | None:
        """The rate-limit headers of a heartbeat made here, or None to hand the request on."""
        state = scope["state"]
        if (
            self.sessions is None or self.sessions.pool is not state["pool"]
        ):  # first request, or a new lifespan
            app_state = scope["app"].state
            self.sessions = SessionService(state["pool"], app_state.settings, app_state.clock)
            self.presence, self.limiter, self.rules = state["presence"], state["limiter"], state["rules"]
        assert self.rules is not None
        try:
            lookups: SessionLookups = scope["app"].state.session_lookups  # shared with the full path
            principal = self.sessions.settled_bearer(await lookups.row(self.sessions.pool, token))
            if principal is None:
                return None
            headers: list[tuple[bytes, bytes]] = []
            target = http_limit_target(self.rules, "POST", HEARTBEAT_PATH, principal, "")
            if target is not None:
                bucket = (target.profile, target.route, target.subject, target.rate)
                decision = await self._limits.submit(bucket)
                if decision is not None:
                    if not decision.allowed:
                        return None
                    headers = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
            await self._beats.submit((principal.user_id, status))
        except Exception:  # the full application meets the same failure and answers it (503, ...)
            return None
        return headers

    async def _check(self, buckets: Sequence[Bucket]) -> list[Decision | None]:
        assert self.limiter is not None
        return await self.limiter.check_many(buckets)

    async def _heartbeat(self, beats: Sequence[Beat]) -> list[Any]:
        assert self.presence is not None
        return await self.presence.heartbeats(beats)


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
