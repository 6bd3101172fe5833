"""A TCP proxy that cuts open event streams on demand: a flaky network between a client and the edge.

Bytes pass through unchanged in both directions. A connection that has carried a request for
``/api/stream/...`` counts as a stream; :meth:`DropProxy.cut_streams` aborts those connections on both sides
(the client sees a reset mid-stream, possibly in the middle of an event).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

STREAM_REQUEST = b"GET /api/stream/"


@dataclass(eq=False)
class Link:
    """One client connection and its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    is_stream: bool = False
    bytes_down: int = 0  # upstream -> client

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()


@dataclass
class DropProxy:
    upstream_host: str
    upstream_port: int
    links: set[Link] = field(default_factory=set)
    cuts: int = 0
    refusing: bool = False  # while set, new connections are cut at once (the network is down)
    stream_opened: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[object]] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def open_streams(self) -> list[Link]:
        return [link for link in self.links if link.is_stream]

    def cut_streams(self) -> int:
        """Abort every connection carrying a stream; the number cut."""
        cut = self.open_streams()
        for link in cut:
            link.abort()
            self.links.discard(link)
        self.cuts += len(cut)
        if not self.open_streams():
            self.stream_opened.clear()
        return len(cut)

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for link in list(self.links):
            link.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            client_writer.transport.abort()
            return
        link = Link(client_writer, upstream_writer)
        self.links.add(link)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with asyncio.TaskGroup() as pumps:
                pumps.create_task(self._pump(client_reader, upstream_writer, link, upward=True))
                pumps.create_task(self._pump(upstream_reader, client_writer, link, upward=False))
        except* (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.links.discard(link)
            link.abort()
            self._tasks.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link, *, upward: bool
    ) -> None:
        while data := await reader.read(65536):
            if upward and STREAM_REQUEST in data:
                link.is_stream = True
            writer.write(data)
            await writer.drain()
            if not upward:
                link.bytes_down += len(data)
                if link.is_stream:
                    self.stream_opened.set()
        # One side closed: close the other so that the peer sees the end too.
        with contextlib.suppress(OSError):
            writer.write_eof() if writer.can_write_eof() else writer.close()


@contextlib.asynccontextmanager
async def drop_proxy(target_url: str) -> AsyncIterator[DropProxy]:
    """A :class:`DropProxy` in front of ``target_url`` (``http://host:port``)."""
    parts = urlsplit(target_url)
    assert parts.hostname is not None and parts.port is not None
    proxy = DropProxy(parts.hostname, parts.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
