"""Dropping a connection whose client stopped reading (contract 6.8).

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


class AbortableHttpToolsProtocol(HttpToolsProtocol):
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {ABORT_EXTENSION: {"abort": self.transport.abort}}


def abort_connection(scope: Scope) -> bool:
    """Abort the connection of ``scope``; False when the server offers no way to."""
    extension = scope.get("extensions", {}).get(ABORT_EXTENSION)
    abort: Callable[[], None] | None = extension.get("abort") if extension else None
    if abort is None:
        return False
    abort()
    return True
