"""Every process starts, answers its operational endpoints (contract 2.5) and describes itself in OpenAPI 3.1;
a process refuses to start on a schema older than it needs; presence reports Redis as missing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from tests.support.servers import SuiteServers, create_database, drop_database
from tests.support.stack import Stack, python_env
from threadline_devstack.servers import free_port
from threadline_shared.db import REQUIRED_SCHEMA_VERSION

pytestmark = pytest.mark.e2e
HTTP_SERVICES = ["api", "streamer", "presence"]


@pytest.mark.parametrize("service", ["api", "streamer", "presence", "assistant"])
def test_every_process_is_live_and_ready(stack: Stack, service: str) -> None:
    health = httpx.get(stack.url(service) + "/healthz")
    ready = httpx.get(stack.url(service) + "/readyz")

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"ready": True}
    assert health.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("service", ["api", "streamer", "presence", "assistant"])
def test_every_process_exposes_prometheus_metrics(stack: Stack, service: str) -> None:
    httpx.get(stack.url(service) + "/healthz")
    response = httpx.get(stack.url(service) + "/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    for name in (
        "threadline_http_requests_total",
        "threadline_stream_connections",
        "threadline_assistant_jobs_total",
    ):
        assert f"# TYPE {name}" in response.text
    assert f'route="/healthz",service="{service}"' in response.text


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_openapi_is_valid_openapi_3_1(stack: Stack, service: str) -> None:
    response = httpx.get(stack.url(service) + "/openapi.json")

    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert {"/healthz", "/readyz", "/metrics"} <= set(document["paths"])


def test_the_assistant_worker_has_no_openapi(stack: Stack) -> None:
    response = httpx.get(stack.url("assistant") + "/openapi.json")
    assert response.status_code == 404
    assert response.json()["code"] == "RGP.NOT_FOUND"


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_unknown_routes_are_problems_on_every_service(stack: Stack, service: str) -> None:
    response = httpx.get(stack.url(service) + "/api/definitely/not/here", headers={"x-request-id": "probe-1"})

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "probe-1"


def test_logs_are_structured_with_the_request_id(stack: Stack) -> None:
    httpx.get(stack.url("api") + "/api/nothing", headers={"x-request-id": "trace-42"})
    deadline = time.monotonic() + 5
    while '"request_id":"trace-42"' not in stack.logs("api"):
        assert time.monotonic() < deadline, stack.logs("api")[-2000:]
        time.sleep(0.05)


@pytest.mark.parametrize("module", ["threadline_api", "threadline_streamer", "threadline_presence"])
def test_a_service_refuses_to_start_on_an_old_schema(
    servers: SuiteServers, module: str, request: pytest.FixtureRequest
) -> None:
    name = f"t_unmigrated_{module}"
    url = create_database(servers, name, template=None)
    try:
        env = {**python_env(), "DATABASE_URL": url, "REDIS_URL": servers.redis_url, "THREADLINE_PORT": "0"}
        done = subprocess.run(
            [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        drop_database(servers, name)

    assert done.returncode == 1
    assert f"schema is at version 0, this service needs {REQUIRED_SCHEMA_VERSION}" in done.stderr
    assert "threadline-migrate" in done.stderr


def test_presence_is_not_ready_without_redis(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    env = {
        **python_env(),
        "DATABASE_URL": database_url,
        "REDIS_URL": dead_redis,
        "THREADLINE_PORT": str(port),
    }
    with (tmp_path / "presence.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "threadline_presence"], env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert response.status_code == 503
        assert response.json() == {"ready": False, "missing": ["redis"]}
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
