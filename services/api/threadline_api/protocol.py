"""The api's HTTP protocol: uvicorn's httptools protocol, with plain posts made below ASGI (the lean path of
:mod:`threadline_api.messages.fastpath`, served by :class:`threadline_shared.leanpath.LeanHttpProtocol`)."""

from __future__ import annotations

from threadline_shared.leanpath import LeanHttpProtocol


class ApiHttpProtocol(LeanHttpProtocol):
    lean_path_attribute = "posts"
