"""The api served in-process over a real loopback socket, with a clock the test controls, and personas.

``alice`` sets Threadline up (global admin); ``bob``, ``carol``, ``dave`` and ``erin`` register. Each persona
holds a bearer token (``bearer`` headers) and can open a cookie-authenticated client with the CSRF header set
(``browser()``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
from starlette.applications import Starlette

from tests.support.http import serve_app
from threadline_api.app import create_app
from threadline_api.protocol import ApiHttpProtocol
from threadline_api.settings import ApiSettings
from threadline_shared.clock import FakeClock
from threadline_shared.db import QueryLogger

PASSWORD = "correct horse battery staple"


@dataclass
class Persona:
    id: UUID
    username: str
    email: str
    token: str
    csrf_token: str
    api: Api

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def browser(self, *, csrf: bool = True) -> httpx.AsyncClient:
        """A cookie-authenticated client, sending the CSRF header unless told not to."""
        headers = {"X-CSRF-TOKEN": self.csrf_token} if csrf else {}
        cookies = {"SESSION_ID": self.token, "CSRF-TOKEN": self.csrf_token}
        return httpx.AsyncClient(base_url=self.api.url, cookies=cookies, headers=headers, timeout=30)


@dataclass
class Api:
    url: str
    clock: FakeClock
    settings: ApiSettings
    http: httpx.AsyncClient
    personas: dict[str, Persona] = field(default_factory=dict)
    app: Starlette | None = None  # served in-process (None: a remote api process)

    async def request(
        self, method: str, path: str, user: Persona | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {**(user.bearer if user else {}), **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, user: Persona | None = None, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, user, **kwargs)

    async def post(self, path: str, user: Persona | None = None, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, user, **kwargs)

    async def delete(self, path: str, user: Persona | None = None, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, user, **kwargs)

    async def login(self, identifier: str, password: str = PASSWORD) -> httpx.Response:
        response = await self.http.post("/api/auth/login", json={"email": identifier, "password": password})
        self.http.cookies.clear()  # the shared client stays anonymous: personas carry their own tokens
        return response

    async def persona(self, name: str) -> Persona:
        """The named user, created on first use (the first one through setup, as global admin)."""
        if name in self.personas:
            return self.personas[name]
        email = f"{name}@example.com"
        body = {"username": name, "email": email, "password": PASSWORD, "display_name": name.capitalize()}
        if not self.personas:
            created = await self.http.post("/api/setup", json=body)
        else:
            created = await self.http.post("/api/auth/register", json=body)
        assert created.status_code in (200, 201), created.text
        logged_in = await self.login(name)
        assert logged_in.status_code == 200, logged_in.text
        data = logged_in.json()
        persona = Persona(
            UUID(created.json()["id"]), name, email, data["session_token"], data["csrf_token"], self
        )
        self.personas[name] = persona
        return persona


@asynccontextmanager
async def remote_api(url: str) -> AsyncIterator[Api]:
    """Personas and requests against an api process (end-to-end); its clock is the system's."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield Api(url, FakeClock(), ApiSettings.load(env="test"), http)


@asynccontextmanager
async def running_api(
    database_url: str, redis_url: str, *, query_observer: QueryLogger | None = None, **overrides: Any
) -> AsyncIterator[Api]:
    """The api with test settings (``overrides`` replace settings fields); ``query_observer`` sees every SQL
    query the api runs."""
    overrides.setdefault("password_hashing", "fast")
    settings = ApiSettings.load(env="test", database_url=database_url, redis_url=redis_url, **overrides)
    assert isinstance(settings, ApiSettings)
    clock = FakeClock(datetime.now(UTC))
    app = create_app(settings, clock=clock, query_observer=query_observer)
    async with (
        serve_app(app, http=ApiHttpProtocol) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,  # some tests hold a request while they act
    ):
        yield Api(url, clock, settings, http, app=app)
