"""Serving an ASGI app over a real loopback socket inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp


@contextlib.asynccontextmanager
async def serve_app(app: ASGIApp, *, http: type[asyncio.Protocol] | str = "auto") -> AsyncIterator[str]:
    """Run ``app`` with uvicorn (lifespan included) on a free port; yield its base URL. ``http``: uvicorn's
    HTTP protocol (a class for a subclass such as the streamer's)."""
    # proto=IPPROTO_TCP so that asyncio sets TCP_NODELAY on accepted connections (it checks ``sock.proto``);
    # without it Nagle holds each response body back until the client's delayed ACK, ~40 ms per request.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # proxy_headers off, as threadline_shared.server.serve runs the services: the services' own protocols
    # then see the application itself, not uvicorn's ProxyHeadersMiddleware around it.
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", loop="asyncio", http=http, proxy_headers=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("server stopped before it started")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
