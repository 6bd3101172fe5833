"""The api's HTTP protocol: uvicorn's httptools protocol, with plain posts answered below ASGI.

A plain post (see :mod:`threadline_api.messages.fastpath`) whose whole body came with its head is made from
here: its batch answers it and the response is written straight to the socket from the batch's callback,
without a task per request, uvicorn's ``send``/``receive`` or Starlette. Everything else, and any post the
lean path declines, starts the application's ASGI task as usual (the body is still in the cycle, unread).

The request keeps uvicorn's per-connection order: the response completes its cycle (``on_response``), which
starts a pipelined request or arms the keep-alive timer, exactly as uvicorn's own ``send`` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import cast

from starlette.types import Scope
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from threadline_api.messages.fastpath import Answer, Declined, Posts, target
from threadline_shared.leanpath import plain_request, write_response
from threadline_shared.middleware import own_headers
from threadline_shared.server import app_state

log = logging.getLogger(__name__)


class ApiHttpProtocol(HttpToolsProtocol):
    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        posts: Posts | None = getattr(app_state(self.app), "posts", None)
        if posts is None or not posts.candidate(cast(Scope, cycle.scope)):
            super()._start_asgi_task(cycle, app)
        else:  # once the parser is through the data at hand, which normally holds the body
            self.loop.call_soon(self._post, posts, cycle, app)

    def _post(self, posts: Posts, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        started = time.perf_counter()
        scope = cast(Scope, cycle.scope)
        future: asyncio.Future[Answer | Declined] | None = None
        given_request_id = None
        try:
            plain = plain_request(scope, posts.max_body_bytes)
            job_target = target(scope) if plain is not None else None
            if (
                plain is not None
                and job_target is not None
                and not cycle.more_body
                and not cycle.disconnected
            ):
                given_request_id = plain[1]
                future = posts.submit(scope, plain[0], job_target, bytes(cycle.body))
        except Exception:  # a callback's exception would only be logged: let the application answer
            log.exception("post lean path failed; the application answers")
        if future is None:
            super()._start_asgi_task(cycle, app)
            return
        future.add_done_callback(partial(self._answered, posts, cycle, app, given_request_id, started))

    def _answered(
        self,
        posts: Posts,
        cycle: RequestResponseCycle,
        app: ASGI3Application,
        given_request_id: bytes | None,
        started: float,
        future: asyncio.Future[Answer | Declined],
    ) -> None:
        scope = cast(Scope, cycle.scope)
        try:
            answer = posts.outcome(scope, future)
            if answer is None:
                super()._start_asgi_task(cycle, app)
                return
            headers, request_id = own_headers(answer.headers, given_request_id)
            write_response(self, cycle, answer.status, headers, answer.body)
        except Exception:  # a callback's exception would only be logged: close rather than leave it hanging
            log.exception("post answer failed; closing the connection")
            self.transport.close()
            return
        posts.finished(scope, answer, request_id, started)
