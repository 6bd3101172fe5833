"""The presence service's HTTP protocol: uvicorn's httptools protocol, with plain heartbeats answered below
ASGI (the lean path of :mod:`threadline_presence.fastpath`, served by
:class:`threadline_shared.leanpath.LeanHttpProtocol`): the same batch, rules and answer as the ASGI lean
path, written straight to the socket from the batch's callback."""

from __future__ import annotations

from threadline_shared.leanpath import LeanHttpProtocol


class PresenceHttpProtocol(LeanHttpProtocol):
    lean_path_attribute = "heartbeats"
