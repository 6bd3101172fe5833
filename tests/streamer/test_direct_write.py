"""The streamer's direct write (threadline_streamer.transport): a frame, encoded once as an HTTP/1.1 chunk,
goes out at once as the next chunk of the running response, and the writer declines, so that frames take
the flow-controlled ASGI path, as soon as the socket has unsent bytes (a client that stopped reading)."""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send

from tests.support.http import serve_app
from threadline_streamer.transport import (
    AbortableHttpToolsProtocol,
    DirectWrite,
    direct_writer,
    disconnect_notifier,
)
from threadline_streamer.wire import http_chunk

FRAME = b"event: x\ndata: {}\n\n"


async def run_lifespan(receive: Receive, send: Send) -> None:
    """A bare ASGI lifespan: start at once, stop when asked."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


class StreamingApp:
    """Starts a chunked response, then hands its direct writer to the test."""

    def __init__(self) -> None:
        self.writer: asyncio.Future[DirectWrite | None] = asyncio.get_running_loop().create_future()
        self.done = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"start\n", "more_body": True})
        self.writer.set_result(direct_writer(scope))
        await self.done.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def open_raw(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    assert await reader.readuntil(b"start\n\r\n") == b"6\r\nstart\n\r\n"
    return reader, writer


async def test_a_direct_write_is_the_next_chunk_of_the_response() -> None:
    app = StreamingApp()
    async with serve_app(app, http=AbortableHttpToolsProtocol) as url:
        reader, writer = await open_raw(url)
        write = await app.writer
        assert write is not None
        chunk = http_chunk(FRAME)
        assert chunk == b"%x\r\n%b\r\n" % (len(FRAME), FRAME)
        assert write(chunk) and write(chunk)
        assert await asyncio.wait_for(reader.readexactly(2 * len(chunk)), 5) == 2 * chunk
        app.done.set()
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"0\r\n\r\n"
        writer.close()


async def test_the_writer_declines_once_the_socket_has_unsent_bytes() -> None:
    app = StreamingApp()
    async with serve_app(app, http=AbortableHttpToolsProtocol) as url:
        _reader, writer = await open_raw(url)  # and never read again
        write = await app.writer
        assert write is not None
        big = http_chunk(b"x" * 65536)
        accepted = 0
        while write(big):  # the kernel's socket buffers fill, then the transport starts to buffer
            accepted += 1
            assert accepted < 10_000, "the writer never declined"
        assert not write(http_chunk(FRAME))
        app.done.set()
        writer.close()


async def test_without_the_protocol_there_is_no_direct_writer() -> None:
    app = StreamingApp()
    async with serve_app(app) as url:
        _reader, writer = await open_raw(url)
        assert await app.writer is None
        app.done.set()
        writer.close()


class WatchingApp:
    """Registers a disconnect callback, then waits for it."""

    def __init__(self) -> None:
        self.registered = asyncio.Event()
        self.lost = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"start\n", "more_body": True})
        notify = disconnect_notifier(scope)
        assert notify is not None
        notify(self.lost.set)
        self.registered.set()
        await self.lost.wait()


async def test_a_stream_hears_of_its_clients_departure_without_a_task_of_its_own() -> None:
    app = WatchingApp()
    async with serve_app(app, http=AbortableHttpToolsProtocol) as url:
        _reader, writer = await open_raw(url)
        await asyncio.wait_for(app.registered.wait(), 5)
        assert not app.lost.is_set()
        writer.close()
        await asyncio.wait_for(app.lost.wait(), 5)
