"""Two scope extensions of the streamer's HTTP protocol (uvicorn's httptools protocol, subclassed).

``threadline.write``: the live fan-out writes a frame straight to the socket, as uvicorn's own ``send`` would
(one HTTP/1.1 chunk, encoded once per event), instead of waking the connection's coroutine and passing the
frame down the ASGI ``send`` chain. It applies only while nothing else is buffered for that socket and the
response is a started, chunked, unfinished one; otherwise it declines and the frame takes the ordinary path,
which applies uvicorn's flow control (and so the write timeout that reaps a client that stopped reading).
Measured with bench/streamer_fanout.py: the ordinary path cost about 47 µs of streamer CPU per delivery.

``threadline.abort``: dropping a connection whose client stopped reading (contract 6.8).

``threadline.disconnect``: a stream learns that its client went away from a callback, instead of keeping a
task per connection waiting on ASGI ``receive`` (measured: a task, its coroutine and future are about 2 KiB
of each connection's RSS).

Closing a transport waits until its write buffer has drained, which a client that reads nothing never lets
happen, and ASGI has no way to abort a connection. So the streamer serves HTTP with uvicorn's httptools
protocol plus one scope extension, ``threadline.abort``, through which a stream that cannot finish its last
write aborts the connection (the socket closes at once; unsent bytes are discarded). Without the extension
(an app served by something else, as in in-process tests) the connection is left to the server.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

ABORT_EXTENSION = "threadline.abort"
WRITE_EXTENSION = "threadline.write"
DISCONNECT_EXTENSION = "threadline.disconnect"
DirectWrite = Callable[[bytes], bool]
OnDisconnect = Callable[[Callable[[], None]], None]


class AbortableHttpToolsProtocol(HttpToolsProtocol):
    on_lost: Callable[[], None] | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.on_lost = None  # a callback belongs to one request's stream
        self.scope["extensions"] = {
            ABORT_EXTENSION: {"abort": self.transport.abort},
            WRITE_EXTENSION: {"write": self.write_now},
            DISCONNECT_EXTENSION: {"notify": self.notify_on_disconnect},
        }

    def notify_on_disconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the connection is lost (at once if it already is)."""
        if self.transport.is_closing() or (self.cycle is not None and self.cycle.disconnected):
            callback()
            return
        self.on_lost = callback

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        callback, self.on_lost = self.on_lost, None
        if callback is not None:
            callback()

    def write_now(self, chunk: bytes) -> bool:
        """Write ``chunk`` (one encoded HTTP/1.1 chunk, :func:`threadline_streamer.wire.http_chunk`) as the
        next chunk of the current response at once; False when that is not safe (the caller then uses ASGI
        ``send``). Flow control needs no check of its own: the transport pauses writing only above its
        high-water mark and resumes at or below the low one, so a paused connection has unsent bytes."""
        cycle, transport = self.cycle, self.transport
        if (
            cycle is None
            or not cycle.response_started
            or cycle.response_complete
            or cycle.disconnected
            or not cycle.chunked_encoding
            or transport.get_write_buffer_size()
            or transport.is_closing()
        ):
            return False
        transport.write(chunk)
        return True


def disconnect_notifier(scope: Scope) -> OnDisconnect | None:
    """The ``threadline.disconnect`` registration of ``scope``'s connection, if the server offers one."""
    extension = scope.get("extensions", {}).get(DISCONNECT_EXTENSION)
    notify: OnDisconnect | None = extension.get("notify") if extension else None
    return notify


def direct_writer(scope: Scope) -> DirectWrite | None:
    """The ``threadline.write`` function of ``scope``'s connection, if the server offers one."""
    extension = scope.get("extensions", {}).get(WRITE_EXTENSION)
    write: DirectWrite | None = extension.get("write") if extension else None
    return write


def abort_connection(scope: Scope) -> bool:
    """Abort the connection of ``scope``; False when the server offers no way to."""
    extension = scope.get("extensions", {}).get(ABORT_EXTENSION)
    abort: Callable[[], None] | None = extension.get("abort") if extension else None
    if abort is None:
        return False
    abort()
    return True
