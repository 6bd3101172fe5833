"""A conversation's event stream (contract 6) as an async iterator that survives drops on its own.

::

    async for received in client.stream(conversation_id):
        match received.event:
            case MessageCreatedEvent(payload=message): ...

- Each item is a :class:`ReceivedEvent`: the typed envelope (``threadline_shared.dto.StreamEvent``) and, for
  durable events, its sequence number ``seq``.
- When the connection ends or breaks, the stream reconnects after the server's ``retry:`` delay, doubling
  it on each failed attempt (capped), with jitter, and sends ``Last-Event-ID``: the server replays what was
  missed. A durable event is never yielded twice (its ``seq`` must be above the last one yielded).
- A drop before the first durable event resumes with ``?since=`` the time the stream was first opened, by the
  server's clock (its ``Date`` header, less a second for its whole-second resolution), so a client whose
  clock runs ahead still misses nothing.
- Ephemeral events (presence, typing) pass through as they come, without ``seq``.
- ``error{code: "resync_required"}`` raises :class:`ResyncRequired`; 401, 403, 404, 423 and other client
  errors raise their :class:`ProblemError` at once (no retry loop: a logged-out session ends the stream with
  :class:`Unauthorized` on the next connect). 429 waits ``Retry-After``; 5xx and transport errors retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import StrEnum
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent
from pydantic import ValidationError

from threadline_client.errors import ResyncRequired, ThreadlineError, problem_from_response
from threadline_client.http import HttpSession, describe_transport_error
from threadline_shared.dto import (
    STREAM_EVENT_ADAPTER,
    ErrorEvent,
    EventType,
    StreamErrorCode,
    StreamEvent,
    is_durable,
)

log = logging.getLogger(__name__)

DEFAULT_RETRY_MS = 3000
DEFAULT_MAX_DELAY_SECONDS = 30.0
DEFAULT_READ_TIMEOUT_SECONDS = 45.0  # three keepalive intervals (contract 6.7): then the connection is dead
MIN_DELAY_SECONDS = 0.05
_RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ReceivedEvent:
    """One event of the stream; ``seq`` is its sequence number, ``None`` for ephemeral events."""

    event: StreamEvent
    seq: int | None = None

    @property
    def type(self) -> EventType:
        return self.event.type

    @property
    def durable(self) -> bool:
        return self.seq is not None

    def to_wire(self) -> dict[str, Any]:
        """``{"id"?: seq, "type": ..., "payload": {...}}``, JSON-ready."""
        envelope = self.event.to_wire()
        return {"id": self.seq, **envelope} if self.seq is not None else envelope


class StreamState(StrEnum):
    CONNECTING = "connecting"
    OPEN = "open"
    RECONNECTING = "reconnecting"


@dataclass(frozen=True)
class StreamStatus:
    """Reported through ``on_status``: ``RECONNECTING`` carries the failed attempt count, the wait before
    the next attempt and why the last connection ended."""

    state: StreamState
    attempt: int = 0
    delay_seconds: float = 0.0
    reason: str = ""


@dataclass
class ReconnectPolicy:
    """Delay before attempt ``n`` after a failure: the server's ``retry:`` × 2^(n-1), capped, times a random
    factor in [1, 1 + jitter), so that many clients dropped at once do not come back at once."""

    retry_ms: int = DEFAULT_RETRY_MS
    max_delay_seconds: float = DEFAULT_MAX_DELAY_SECONDS
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failures: int, retry_after_seconds: int | None = None) -> float:
        base: float = self.retry_ms / 1000 * 2 ** max(0, failures - 1)
        base = max(MIN_DELAY_SECONDS, min(self.max_delay_seconds, base))
        if retry_after_seconds is not None:
            base = max(base, float(retry_after_seconds))
        return base * self.rng.uniform(1.0, 1.0 + self.jitter)


StatusCallback = Callable[[StreamStatus], None]


class EventStream:
    """The async iterator returned by ``ThreadlineClient.stream``; also an async context manager that closes
    the connection on exit."""

    def __init__(
        self,
        session: HttpSession,
        conversation_id: str,
        last_event_id: int | None = None,
        *,
        policy: ReconnectPolicy | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        on_status: StatusCallback | None = None,
    ) -> None:
        self.session = session
        self.conversation_id = conversation_id
        self.last_event_id = last_event_id
        self.policy = policy or ReconnectPolicy()
        self.on_status = on_status
        self.connections = 0
        """Successful connections so far (200 answers)."""
        self._timeout = httpx.Timeout(10.0, read=read_timeout)
        self._opened_at_ms: int | None = None
        self._events = self._run()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ReceivedEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _report(self, status: StreamStatus) -> None:
        if self.on_status is not None:
            self.on_status(status)

    def _request_headers(self) -> dict[str, str]:
        headers = {**self.session.auth_headers("GET"), "Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        return headers

    def _request_params(self) -> dict[str, int]:
        if self.last_event_id is None and self._opened_at_ms is not None:
            return {"since": self._opened_at_ms}
        return {}

    async def _run(self) -> AsyncGenerator[ReceivedEvent, None]:
        path = f"/api/stream/conversations/{self.conversation_id}"
        failures = 0
        self._report(StreamStatus(StreamState.CONNECTING))
        while True:
            retry_after: int | None = None
            params = self._request_params()
            try:
                async with self.session.http.stream(
                    "GET", path, headers=self._request_headers(), params=params, timeout=self._timeout
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        problem = problem_from_response(response)
                        if problem.status not in _RETRYABLE_STATUSES:
                            raise problem
                        reason, retry_after = problem.summary, problem.retry_after
                    else:
                        _require_event_stream(response)
                        if self._opened_at_ms is None:
                            self._opened_at_ms = _server_time_ms(response.headers.get("date"))
                        self.connections += 1
                        failures = 0
                        self._report(StreamStatus(StreamState.OPEN))
                        async for sse in EventSource(response).aiter_sse():
                            received = self._accept(sse)
                            if received is not None:
                                yield received
                        reason = "the server ended the stream"
            except httpx.TransportError as exc:
                reason = describe_transport_error(exc)
            failures += 1
            delay = self.policy.delay(failures, retry_after)
            log.debug("stream %s: %s; reconnecting in %.2fs", self.conversation_id, reason, delay)
            self._report(StreamStatus(StreamState.RECONNECTING, failures, delay, reason))
            await asyncio.sleep(delay)

    def _accept(self, sse: ServerSentEvent) -> ReceivedEvent | None:
        """The event to yield for one SSE frame, or ``None`` (the ``retry:`` frame, a durable event already
        yielded, an event type this client does not know)."""
        if sse.retry is not None:
            self.policy.retry_ms = sse.retry
        if not sse.data:
            return None
        try:
            event = STREAM_EVENT_ADAPTER.validate_json(sse.data)
        except ValidationError:
            log.warning(
                "stream %s: skipped an event this client cannot read: %.200s", self.conversation_id, sse.data
            )
            return None
        if isinstance(event, ErrorEvent) and event.payload.code is StreamErrorCode.RESYNC_REQUIRED:
            raise ResyncRequired(event.payload.message, self.last_event_id)
        if not is_durable(event):
            return ReceivedEvent(event)
        # httpx-sse keeps the last id across frames (as browsers do); durable frames always carry their own.
        seq = int(sse.id)
        if self.last_event_id is not None and seq <= self.last_event_id:
            return None
        self.last_event_id = seq
        return ReceivedEvent(event, seq)


def _require_event_stream(response: httpx.Response) -> None:
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("text/event-stream"):
        raise ThreadlineError(
            f"expected an event stream from {response.url}, got {content_type or 'no type'}"
        )


def _server_time_ms(date: str | None) -> int:
    """A moment at or before the server's ``Date`` (whole seconds), epoch ms; the local clock without one."""
    try:
        parsed = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        parsed = None
    seconds = parsed.timestamp() if parsed is not None else time.time()
    return int(seconds * 1000) - 1000
