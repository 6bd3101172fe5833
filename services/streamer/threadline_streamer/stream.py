"""``GET /api/stream/conversations/{conversation_id}`` (contract 6).

The handler authenticates (the shared route guard), checks membership, parses the cursor and subscribes the
connection *before* reading the log; :class:`EventStream` then writes ``retry:``, the replay, the snapshot,
and live events until the connection closes (6.6 steps 2-6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline_shared.auth import principal_of
from threadline_shared.dto.events import ErrorEvent, StreamError
from threadline_shared.errors import Forbidden
from threadline_shared.metrics import STREAM_CLOSED, STREAM_CONNECTIONS, STREAM_EVENTS_SENT
from threadline_shared.params import path_uuid
from threadline_shared.settings import Settings
from threadline_streamer import replay
from threadline_streamer.connection import CloseReason, Connection
from threadline_streamer.cursor import parse_cursor
from threadline_streamer.hub import Hub
from threadline_streamer.metrics import DOORBELL_TO_WRITE, REPLAYED
from threadline_streamer.transport import DirectWrite, abort_connection, direct_writer, disconnect_notifier
from threadline_streamer.wire import durable_frame, ephemeral_frame, retry_frame

log = logging.getLogger(__name__)

Snapshot = Callable[[Connection], Awaitable[bytes]]
# The membership and the conversation's last_seq in one snapshot (see subscribe_member).
MEMBERSHIP = """
SELECT p.joined_at, c.last_seq
FROM participants p JOIN conversations c ON c.id = p.conversation_id
WHERE p.conversation_id = $1 AND p.user_id = $2 AND p.left_at IS NULL
"""
MembershipRead = Callable[[], Awaitable["asyncpg.Record | None"]]
FINAL_WRITE_SECONDS = 1.0
RESYNC = ephemeral_frame("error", ErrorEvent(payload=StreamError.resync_required()).to_json())


async def open_stream(request: Request) -> Response:
    conversation_id = path_uuid(request, "conversation_id")
    cursor = parse_cursor(request)
    principal = principal_of(request)
    pool = request.state.pool
    settings: Settings = request.app.state.settings
    hub: Hub = request.state.hub
    connection = Connection(
        conversation_id, principal.user_id, principal.session_id, settings.stream_queue_size
    )
    joined_at = await subscribe_member(
        lambda: pool.fetchrow(MEMBERSHIP, conversation_id, principal.user_id), hub, connection
    )
    try:
        plan = await replay.plan(pool, conversation_id, cursor)
    except BaseException:
        hub.unsubscribe(connection)
        raise
    return EventStream(request, connection, plan, joined_at)


async def subscribe_member(read: MembershipRead, hub: Hub, connection: Connection) -> datetime:
    """Check the caller's membership and subscribe the connection; the member's ``joined_at``, or 403.

    The membership is read with the conversation's ``last_seq``, and the subscription refused when a
    ``membership.changed`` newer than that read was already delivered to the conversation's channel
    (:meth:`Hub.subscribe_at`): a member removed between the read and the subscription would otherwise keep
    a stream, since the event that ends the removed member's streams had gone by before this one joined. A
    change not yet delivered ends this stream like the others when it is. Refused, the membership is read
    again: the change is committed by then, so the loop ends with a subscription or a 403."""
    while True:
        row = await read()
        if row is None:
            raise Forbidden("not a participant of this conversation")
        if hub.subscribe_at(connection, row["last_seq"]):
            joined_at: datetime = row["joined_at"]
            return joined_at


class EventStream(Response):
    """The SSE response. Headers (request id, rotation cookies) are the ordinary response headers."""

    media_type = "text/event-stream; charset=utf-8"

    def __init__(
        self, request: Request, connection: Connection, plan: replay.ReplayPlan, joined_at: datetime
    ):
        super().__init__(
            status_code=200,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            media_type=self.media_type,
        )
        # A stream has no length: drop the Content-Length: 0 that Response adds for an empty body.
        self.raw_headers = [(name, value) for name, value in self.raw_headers if name != b"content-length"]
        self.request: Request | None = request
        self.connection = connection
        self.plan: replay.ReplayPlan | None = plan
        self.joined_at = joined_at

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request, connection, plan = self.request, self.connection, self.plan
        assert request is not None and plan is not None, "a stream response is sent once"
        settings: Settings = request.app.state.settings
        snapshot: Snapshot = request.state.snapshot
        stream = LiveStream(connection, request.state.hub, settings.stream_keepalive_seconds)
        notify = disconnect_notifier(scope)
        if notify is not None:
            notify(lambda: connection.close(CloseReason.CLIENT))
        else:  # a server without the extension (in-process tests): a task waits for http.disconnect
            stream.watcher = asyncio.get_running_loop().create_task(_watch_disconnect(receive, connection))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await stream.write(send, retry_frame(settings.stream_retry_ms))
            await self._replay(stream, send, plan, request.state.pool)
            if connection.close_after_flush is None:  # a removed member gets no snapshot of the others
                await stream.write(send, await snapshot(connection))
        except (OSError, TimeoutError):
            connection.close(CloseReason.WRITE_TIMEOUT)
            await stream.finish(scope, send)
            return
        except BaseException:
            await stream.finish(scope, send)
            raise
        self.request = self.plan = None  # not needed live: let them go
        handoff = scope.get("extensions", {}).get(HANDOFF_EXTENSION)
        if handoff is not None:
            handoff["live"] = stream.run  # the outer middleware runs it, and the stack below returns
            return
        await stream.run(scope, send)

    async def _replay(
        self, stream: LiveStream, send: Send, plan: replay.ReplayPlan, pool: asyncpg.Pool
    ) -> None:
        if plan.resync:
            await stream.write(send, RESYNC)
            STREAM_EVENTS_SENT.labels("error").inc()
            return
        if plan.after is None:
            return
        connection, after = self.connection, plan.after
        while True:
            batch = await replay.events_after(
                pool, connection.conversation_id, after, connection.user_id, self.joined_at
            )
            if batch.behind_horizon:  # a prune overtook the plan: the events after the cursor are gone
                await stream.write(send, RESYNC)
                STREAM_EVENTS_SENT.labels("error").inc()
                return
            if not batch.rows:
                return
            rows, removed = replay.until_removed(batch.rows, connection.user_id)
            frames = b"".join(durable_frame(r["seq"], r["type"], r["envelope"]) for r in rows)
            await stream.write(send, frames)
            after = rows[-1]["seq"]
            connection.highest_seq = max(connection.highest_seq, after)
            REPLAYED.inc(len(rows))
            if removed:  # removed while resuming: nothing after it, and the stream ends (4.3 step 6)
                connection.finish_after_flush(CloseReason.REMOVED)
                return
            if len(rows) < replay.REPLAY_BATCH:
                return


class LiveStream:
    """A subscribed connection's response once it has started: counted while open; writes with a time
    limit; the live loop (6.6 step 6); the end (unsubscribe, count the reason, end or abort the response).
    Used by :class:`EventStream` and by the lean connect path (:mod:`threadline_streamer.fastpath`)."""

    __slots__ = ("connection", "hub", "watcher", "write_timeout")

    def __init__(self, connection: Connection, hub: Hub, write_timeout: float) -> None:
        self.connection = connection
        self.hub = hub
        self.write_timeout = write_timeout
        self.watcher: asyncio.Task[None] | None = None
        STREAM_CONNECTIONS.inc()

    async def run(self, scope: Scope, send: Send) -> None:
        """Live events until the connection closes, then the end of the stream (6.6 step 6)."""
        try:
            await self._live(send, direct_writer(scope))
        except (OSError, TimeoutError):
            self.connection.close(CloseReason.WRITE_TIMEOUT)
        finally:
            await self.finish(scope, send)

    async def finish(self, scope: Scope, send: Send) -> None:
        connection = self.connection
        self.hub.unsubscribe(connection)
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        reason = connection.closed or connection.close_after_flush or CloseReason.CLIENT
        STREAM_CLOSED.labels(reason.value).inc()
        STREAM_CONNECTIONS.dec()
        await _end(scope, send)

    async def write(self, send: Send, data: bytes) -> None:
        if not data or self.connection.closed is not None:
            return
        async with asyncio.timeout(self.write_timeout):
            await send({"type": "http.response.body", "body": data, "more_body": True})
        self.connection.last_write = time.monotonic()

    async def _live(self, send: Send, direct: DirectWrite | None) -> None:
        connection = self.connection
        while connection.closed is None:
            if not connection.queue:
                if connection.close_after_flush is not None:
                    connection.close(connection.close_after_flush)
                    return
                connection.direct = direct  # idle: frames may go straight to the socket
                try:
                    await connection.wait()
                finally:
                    connection.direct = None
                continue
            since = connection.pending_since
            connection.pending_since = None
            data, _ = connection.take()
            if data:
                await self.write(send, data)
                if since is not None:
                    DOORBELL_TO_WRITE.observe(time.perf_counter() - since)


HANDOFF_EXTENSION = "threadline.handoff"
STREAM_PATH_PREFIX = "/api/stream/"


class StreamHandoff:
    """Outermost middleware of the streamer: it runs a stream's live part itself, after the application's
    stack (middleware, router, route guard, handler) has set the stream up and returned.

    A stream lives for hours, and while it does every coroutine frame of that stack stayed alive with it
    (about a dozen). Here, once the response has started and the replay and snapshot are written, the
    handler leaves :meth:`LiveStream.run` in the scope's ``threadline.handoff`` extension and returns;
    the request is logged and counted then, as set up. The live part writes with the server's own ``send``
    (the stack's wrappers only touch the response start). Measured with bench/streamer_fanout.py.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(STREAM_PATH_PREFIX):
            await self.app(scope, receive, send)
            return
        handoff: dict[str, Callable[[Scope, Send], Awaitable[None]]] = {}
        extensions = scope.setdefault("extensions", {})
        extensions[HANDOFF_EXTENSION] = handoff
        await self.app(scope, receive, send)
        live = handoff.get("live")
        if live is not None:
            await live(scope, send)


async def _end(scope: Scope, send: Send) -> None:
    """End the response; abort the connection when even that last write cannot finish (a client that
    stopped reading), so that the socket closes instead of waiting for the client forever."""
    try:
        async with asyncio.timeout(FINAL_WRITE_SECONDS):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except TimeoutError:
        if abort_connection(scope):
            await asyncio.sleep(0)  # the server learns the connection is gone before the app returns
    except (OSError, RuntimeError):
        pass


async def _watch_disconnect(receive: Receive, connection: Connection) -> None:
    """Wakes once, when the client goes away."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            connection.close(CloseReason.CLIENT)
            return
