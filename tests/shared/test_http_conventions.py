"""Conventions every service shares, over real HTTP (contract 1.1, 1.7, 1.8, 2.4): problem+json for our
errors and the framework's, the body limit, request ids, security headers, CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import StrictInt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from tests.support.http import serve_app
from threadline_shared.app import create_service_app, json_response
from threadline_shared.dto.base import RequestModel, Uuid
from threadline_shared.errors import Conflict, RateLimited
from threadline_shared.params import path_uuid, query_int, read_json
from threadline_shared.routes import ApiRoute, Doc
from threadline_shared.settings import Settings

ORIGIN = "http://app.example"


class Widget(RequestModel):
    name: str
    size: StrictInt
    owner_id: Uuid | None = None


async def create_widget(request: Request) -> Response:
    widget = await read_json(request, Widget)
    return json_response(widget.model_dump(mode="json"), 201)


async def get_widget(request: Request) -> Response:
    widget_id = path_uuid(request, "widget_id")
    limit = query_int(request, "limit", default=20, minimum=1, maximum=100)
    return json_response({"id": str(widget_id), "limit": limit})


async def conflict(request: Request) -> Response:
    raise Conflict("username taken")


async def limited(request: Request) -> Response:
    raise RateLimited(details={"retry_after_seconds": 1}, headers={"Retry-After": "1"})


async def crash(request: Request) -> Response:
    raise RuntimeError("secret internals")


def build_app(**overrides: Any) -> Starlette:
    settings = Settings.load(env="test", cors_origins=[ORIGIN], max_body_bytes=1024, **overrides)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {}

    async def readiness(request: Request) -> list[str]:
        return []

    routes = [
        ApiRoute("/api/widgets", create_widget, methods=["POST"], doc=Doc("create", request=Widget)),
        ApiRoute("/api/widgets/{widget_id}", get_widget, methods=["GET"], doc=Doc("get")),
        ApiRoute("/api/conflict", conflict, methods=["POST"], doc=Doc("conflict")),
        ApiRoute("/api/limited", limited, methods=["GET"], doc=Doc("limited")),
        ApiRoute("/api/crash", crash, methods=["GET"], doc=Doc("crash")),
    ]
    return create_service_app(settings, service="test", routes=routes, lifespan=lifespan, readiness=readiness)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(build_app()) as url, httpx.AsyncClient(base_url=url) as http:
        yield http


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:threadline:problem:{code}"
    assert body["code"] == code
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    return body


async def test_a_valid_body_is_parsed(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/widgets", json={"name": "cog", "size": 3, "extra": "ignored"})
    assert response.status_code == 201
    assert response.json() == {"name": "cog", "size": 3, "owner_id": None}


async def test_json_with_a_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/widgets",
        content=b'{"name":"cog","size":1}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "raw",
    [b'{"name":', b'{"name": "cog", "size": 1' + b"0" * 400 + b"}"],  # the second: beyond a double
)
async def test_malformed_json_is_400(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post("/api/widgets", content=raw, headers={"content-type": "application/json"})
    assert_problem(response, 400, "invalid_request")


async def test_a_body_that_is_not_json_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/widgets", content=b"name=cog", headers={"content-type": "text/plain"})
    assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "cog"}, "size"),
        ({"name": "cog", "size": 2.5}, "size"),
        ({"name": "cog", "size": "2"}, "size"),
        ({"name": "cog", "size": 1, "owner_id": "not-a-uuid"}, "owner_id"),
        ({"name": "cog", "size": 1, "owner_id": "0193a5b27c1e7d3a9f213b4c5d6e7f80"}, "owner_id"),
    ],
)
async def test_a_body_that_does_not_fit_is_422_with_field_details(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(await client.post("/api/widgets", json=body), 422, "validation_failed")
    assert [error["field"] for error in problem["details"]["errors"]] == [field]


@pytest.mark.parametrize(
    ("literal", "size"),
    [
        (b"18446744073709551616", 2**63 - 1),  # 2^64, which orjson reads as a float
        (b"1" + b"0" * 300, 2**63 - 1),
        (b"-9223372036854775809", -(2**63)),
        (b"9223372036854775807", 2**63 - 1),
    ],
)
async def test_an_integer_of_any_size_is_an_integer_held_to_64_bits(
    client: httpx.AsyncClient, literal: bytes, size: int
) -> None:
    """A JSON integer is an integer whatever its size (1.5): bounded fields refuse it as out of range, clamped
    ones clamp it; read as a float it would be refused as "not an integer"."""
    body = b'{"name": "cog", "size": ' + literal + b"}"
    response = await client.post("/api/widgets", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 201
    assert response.json()["size"] == size


@pytest.mark.parametrize("literal", [b"1e30", b"2.0", b"1.5e300"])
async def test_a_number_written_with_a_fraction_or_an_exponent_is_not_an_integer(
    client: httpx.AsyncClient, literal: bytes
) -> None:
    body = b'{"name": "cog", "size": ' + literal + b"}"
    response = await client.post("/api/widgets", content=body, headers={"content-type": "application/json"})
    problem = assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["details"]["errors"]] == ["size"]


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"3"])
async def test_json_that_is_not_an_object_is_422(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post("/api/widgets", content=raw, headers={"content-type": "application/json"})
    assert_problem(response, 422, "validation_failed")


async def test_an_empty_body_reads_as_an_empty_object(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.post("/api/widgets"), 422, "validation_failed")
    assert {error["field"] for error in problem["details"]["errors"]} == {"name", "size"}


async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    body = b'{"name":"' + b"x" * 2000 + b'","size":1}'
    response = await client.post("/api/widgets", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 413, "payload_too_large")


async def test_a_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name":"'
        for _ in range(10):
            yield b"x" * 200
        yield b'","size":1}'

    response = await client.post(
        "/api/widgets", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")


async def test_an_unknown_route_wins_over_the_body_limit(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/nothing", content=b"x" * 5000, headers={"content-type": "application/json"}
    )
    assert_problem(response, 404, "RGP.NOT_FOUND")


@pytest.mark.parametrize("path", ["/api/widgets/", "/api/crash/", "/healthz/"])
async def test_a_route_with_a_trailing_slash_is_an_unknown_route_not_a_redirect(
    client: httpx.AsyncClient, path: str
) -> None:
    """Every error is problem+json (1.7): no 307 with an empty body to the route without the slash."""
    response = await client.post(path, json={"name": "a", "size": 1})
    assert_problem(response, 404, "RGP.NOT_FOUND")
    response = await client.get(path)
    assert_problem(response, 404, "RGP.NOT_FOUND")


async def test_a_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/widgets")
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


async def test_a_malformed_uuid_in_the_path_is_400(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/api/widgets/12345"), 400, "invalid_request")
    assert problem["details"]["errors"][0]["field"] == "widget_id"


async def test_a_path_uuid_may_be_upper_case(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/widgets/0193A5B2-7C1E-7D3A-9F21-3B4C5D6E7F80")
    assert response.json()["id"] == "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"


@pytest.mark.parametrize(("raw", "expected"), [("5", 5), ("1000", 100)])
async def test_limit_is_clamped_to_its_maximum(client: httpx.AsyncClient, raw: str, expected: int) -> None:
    response = await client.get("/api/widgets/0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80", params={"limit": raw})
    assert response.json()["limit"] == expected


@pytest.mark.parametrize("raw", ["0", "-1", "2.5", "ten", ""])
async def test_a_bad_limit_is_400(client: httpx.AsyncClient, raw: str) -> None:
    response = await client.get("/api/widgets/0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80", params={"limit": raw})
    problem = assert_problem(response, 400, "invalid_request")
    assert problem["details"]["errors"][0]["field"] == "limit"


async def test_api_errors_render_as_problems(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.post("/api/conflict"), 409, "RGP.CONFLICT")
    assert problem == {
        "type": "urn:threadline:problem:RGP.CONFLICT",
        "title": "Conflict",
        "status": 409,
        "code": "RGP.CONFLICT",
        "message": "username taken",
    }


async def test_error_headers_and_details_are_sent(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/limited")
    problem = assert_problem(response, 429, "RGP.RATE_LIMITED")
    assert response.headers["retry-after"] == "1"
    assert problem["details"] == {"retry_after_seconds": 1}


async def test_an_unexpected_failure_is_a_generic_500(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/crash")
    problem = assert_problem(response, 500, "RGP.INTERNAL")
    assert "secret" not in response.text
    assert problem["title"] == "Internal Server Error"


async def test_a_valid_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"x-request-id": "trace-abc.123"})
    assert response.headers["x-request-id"] == "trace-abc.123"


@pytest.mark.parametrize("given", [None, "has space", "x" * 129])
async def test_a_missing_or_invalid_request_id_is_replaced(
    client: httpx.AsyncClient, given: str | None
) -> None:
    headers = {"x-request-id": given} if given is not None else {}
    response = await client.get("/healthz", headers=headers)
    generated = response.headers["x-request-id"]
    assert generated != given
    assert len(generated) == 36


async def test_security_headers_are_on_every_response(client: httpx.AsyncClient) -> None:
    for response in [await client.get("/healthz"), await client.get("/nope"), await client.get("/api/crash")]:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert "x-request-id" in response.headers


async def test_an_allowed_origin_gets_credentialed_cors(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["vary"] == "Origin"
    assert "X-Session-Rotated" in response.headers["access-control-expose-headers"]


async def test_a_disallowed_origin_gets_no_cors_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"origin": "http://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_preflight_from_an_allowed_origin(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/widgets", headers={"origin": ORIGIN, "access-control-request-method": "POST"}
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-methods"] == "GET, POST, PUT, PATCH, DELETE, OPTIONS"
    assert "X-CSRF-TOKEN" in response.headers["access-control-allow-headers"]
    assert response.headers["access-control-max-age"] == "600"


async def test_preflight_from_a_disallowed_origin_is_400(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/widgets", headers={"origin": "http://evil.example", "access-control-request-method": "POST"}
    )
    assert_problem(response, 400, "invalid_request")


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"ready": True}


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/widgets/0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80")
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert (
        'threadline_http_requests_total{method="GET",route="/api/widgets/{widget_id}",service="test",status="200"}'
        in response.text
    )


def test_openapi_lists_the_routes_and_models() -> None:
    from threadline_shared.openapi import openapi_document

    document = openapi_document("test", "1", build_app().routes)
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) >= {"/api/widgets", "/api/widgets/{widget_id}", "/healthz", "/readyz"}
    schema = document["paths"]["/api/widgets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Widget"}
    assert "Widget" in document["components"]["schemas"]
