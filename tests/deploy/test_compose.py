"""compose.yaml, Dockerfile and .dockerignore, checked without a container engine (none runs here).

compose.yaml is validated twice: against the official Compose Specification JSON schema and by the
`compose-spec` wheel's parser (Rust bindings; it ships models and a parser, no JSON schema). The schema in
``compose-spec.json`` beside this file is a byte-for-byte copy of
``check_jsonschema/builtin_schemas/vendor/compose-spec.json`` from the ``check-jsonschema`` 0.39.0 wheel on
PyPI, which vendors ``schema/compose-spec.json`` of the compose-spec/compose-spec repository; its licence
(Apache-2.0) is ``compose-spec.LICENSE``. To update it, copy the newer file from that wheel and change
``SCHEMA_SHA256``.

Then the semantic checks the schema cannot make: dependencies, build targets against the Dockerfile's
stages, health checks, ports and environment against the contract (sections 2.1, 2.5, 10), the edge's
mounts, and what each image installs and runs.
"""

from __future__ import annotations

import copy
import hashlib
import http.server
import json
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from compose_spec import PyOptions

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA_FILE = HERE / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

# Contract 2.1: process -> port. The edge listens on 8080.
CONTRACT_PORTS = {"api": 8000, "streamer": 8001, "presence": 8002, "assistant": 8003}
EDGE_PORT = 8080
APP_SERVICES = tuple(CONTRACT_PORTS)
INFRASTRUCTURE = ("postgres", "redis")
ALL_SERVICES = {*INFRASTRUCTURE, "migrate", *APP_SERVICES, "nginx"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}

# Build target -> (package directory it runs, console script it starts).
TARGETS = {
    "api": ("services/api", "threadline-api"),
    "assistant": ("services/api", "threadline-assistant"),
    "streamer": ("services/streamer", "threadline-streamer"),
    "presence": ("services/presence", "threadline-presence"),
    "migrate": ("db", "threadline-migrate"),
}
PACKAGE_DIRS = ("shared", "db", "services/api", "services/streamer", "services/presence")


# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded = json.loads(SCHEMA_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def schema_errors(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """service -> condition, for both the list and the mapping form."""
    raw = service.get("depends_on", {})
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) for both the short and the long syntax."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            parts = volume.split(":")
            mounts.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
        else:
            mounts.append((volume["source"], volume["target"], bool(volume.get("read_only", False))))
    return mounts


def published_ports(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(published, target) for both the short and the long syntax."""
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.append((str(port.get("published", "")), str(port["target"])))
        else:
            *published, target = str(port).split(":")
            ports.append((published[-1] if published else "", target))
    return ports


def healthcheck_command(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    assert isinstance(test, list), "healthcheck.test should be the exec form (a list)"
    assert test[0] in {"CMD", "CMD-SHELL"}
    return [str(part) for part in test[1:]]


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(text: str) -> dict[str, Stage]:
    """A Dockerfile's stages in order: continuations joined, comments dropped, global ARGs expanded."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"

    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m.group(1) or m.group(2)], words[0])
            assert len(words) == 3 and words[1].upper() == "AS", f"every stage needs a name: FROM {rest}"
            current = Stage(name=words[2], base=image)
            assert current.name not in stages, f"stage {current.name} defined twice"
            stages[current.name] = current
        elif current is None:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            name, _, default = rest.partition("=")
            global_args[name] = default
        else:
            current.instructions.append((keyword, rest))
    return stages


def stage_chain(stages: dict[str, Stage], target: str) -> list[Stage]:
    """The target and the stages it is built FROM, root first."""
    chain = [stages[target]]
    while chain[0].base in stages:
        chain.insert(0, stages[chain[0].base])
    return chain


def chain_instructions(stages: dict[str, Stage], target: str, keyword: str) -> list[str]:
    return [rest for stage in stage_chain(stages, target) for kw, rest in stage.instructions if kw == keyword]


def installed_package_dirs(stages: dict[str, Stage], target: str) -> set[str]:
    """First-party package directories that a `pip install` in the target's chain installs."""
    found: set[str] = set()
    for run in chain_instructions(stages, target, "RUN"):
        if "pip install" not in run:
            continue
        assert "--editable" not in run and not re.search(r"\s-e\s", run), f"editable install in: {run}"
        # A bare `shared` is a requirement name that pip looks up on PyPI (where a `shared` exists):
        # first-party packages are installed by path only.
        arguments = run.split("pip install", 1)[1].split("&&")[0].split()
        for argument in arguments:
            assert argument.startswith(("-", "/", "./")), f"pip install {argument}: not a path"
        for match in re.finditer(r"(?:source=|\s\./)((?:services/)?[\w-]+)", run):
            if match.group(1) in PACKAGE_DIRS:
                found.add(match.group(1))
    return found


def pyproject(package_dir: str) -> dict[str, Any]:
    with (ROOT / package_dir / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]


def first_party_closure(package_dir: str) -> set[str]:
    """The package directory and every first-party package it depends on, transitively."""
    by_name = {pyproject(d)["name"]: d for d in PACKAGE_DIRS}
    closure, todo = set(), [package_dir]
    while todo:
        current = todo.pop()
        if current in closure:
            continue
        closure.add(current)
        for requirement in pyproject(current).get("dependencies", []):
            name = re.match(r"[A-Za-z0-9._-]+", requirement)
            assert name is not None
            normalized = re.sub(r"[._]+", "-", name.group(0)).lower()
            if normalized in by_name:
                todo.append(by_name[normalized])
    return closure


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


# ------------------------------------------------------------------------------------- schema and parser


def test_vendored_schema_is_the_recorded_copy() -> None:
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_matches_the_official_schema(schema: dict[str, Any], compose: dict[str, Any]) -> None:
    assert schema["title"] == "Compose Specification"
    assert schema_errors(schema, compose) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "api", "depends_on", "migrate", "condition"), "service_finished"),
        (("services", "api", "healthcheck", "test_command"), ["CMD", "true"]),
        (("services", "migrate", "build", "stage"), "migrate"),
        (("services", "nginx", "ports"), "8080:8080"),
    ],
)
def test_schema_rejects_a_broken_compose_file(
    schema: dict[str, Any], compose: dict[str, Any], path: tuple[str, ...], value: object
) -> None:
    """The validator is not vacuous: one wrong key or value in the real file is reported."""
    broken = copy.deepcopy(compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert schema_errors(schema, broken) != []


def test_compose_spec_parser_accepts_the_file() -> None:
    parsed = PyOptions(apply_merge=True).from_yaml(COMPOSE_FILE.read_text())
    parsed.validate()
    assert set(parsed.service_names()) == ALL_SERVICES
    assert parsed.version is None


def test_compose_spec_parser_rejects_an_unknown_condition() -> None:
    text = COMPOSE_FILE.read_text().replace("service_completed_successfully", "service_done", 1)
    with pytest.raises(ValueError, match="service_done"):
        PyOptions(apply_merge=True).from_yaml(text)


# -------------------------------------------------------------------------------------- service graph


def test_services_are_the_designed_set_and_there_is_no_version_key(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == ALL_SERVICES
    assert "version" not in compose


def test_depends_on_names_existing_services_with_valid_conditions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert dependency != name
            assert condition in CONDITIONS, f"{name} -> {dependency}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency} to be healthy"
            if condition == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", f"{dependency} should be one-shot"


def test_dependency_graph_has_no_cycle(compose: dict[str, Any]) -> None:
    graph = {name: set(depends_on(service)) for name, service in compose["services"].items()}
    order: list[str] = []
    while graph:
        ready = sorted(name for name, deps in graph.items() if deps <= set(order))
        assert ready, f"dependency cycle among {sorted(graph)}"
        order += ready
        for name in ready:
            del graph[name]
    assert order.index("migrate") < min(order.index(s) for s in APP_SERVICES) < order.index("nginx")


def test_migrate_is_one_shot_after_postgres(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["restart"] == "no"
    assert depends_on(migrate) == {"postgres": "service_healthy"}
    assert "healthcheck" not in migrate


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_infrastructure_and_migrations(compose: dict[str, Any], name: str) -> None:
    assert depends_on(compose["services"][name]) == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "migrate": "service_completed_successfully",
    }


def test_edge_waits_for_the_services_it_fronts(compose: dict[str, Any]) -> None:
    assert depends_on(compose["services"]["nginx"]) == dict.fromkeys(APP_SERVICES, "service_healthy")


# ------------------------------------------------------------------------------------------ healthchecks


def test_every_service_but_the_one_shot_and_the_edge_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in {"migrate", "nginx"}:
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service["healthcheck"].get("disable") is not True


def test_infrastructure_healthchecks(compose: dict[str, Any]) -> None:
    postgres = healthcheck_command(compose["services"]["postgres"])
    assert postgres[0] == "pg_isready"
    redis = healthcheck_command(compose["services"]["redis"])
    assert redis == ["redis-cli", "ping"]


class _ReadyzHandler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = b'{"ready":true}' if self.status == 200 else b'{"ready":false,"missing":["database"]}'
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def readyz_server() -> Iterator[tuple[int, type[_ReadyzHandler]]]:
    handler = type("Handler", (_ReadyzHandler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_healthcheck_probes_readyz_on_the_contract_port(
    compose: dict[str, Any], name: str, readyz_server: tuple[int, type[_ReadyzHandler]]
) -> None:
    """The probe is `python -c` (the image has no curl), targets /readyz on the service's own port, and
    fails on 503: run it for real against a stand-in /readyz."""
    command = healthcheck_command(compose["services"][name])
    assert command[:2] == ["python", "-c"]
    code = command[2]
    urls = re.findall(r"http://[^'\"]+", code)
    assert urls == [f"http://127.0.0.1:{CONTRACT_PORTS[name]}/readyz"]
    assert environment(compose["services"][name])["THREADLINE_PORT"] == str(CONTRACT_PORTS[name])

    port, handler = readyz_server
    local_code = code.replace(urls[0], f"http://127.0.0.1:{port}/readyz")
    for status, healthy in ((200, True), (503, False)):
        handler.status = status
        result = subprocess.run([sys.executable, "-c", local_code], capture_output=True, timeout=20)
        assert (result.returncode == 0) is healthy, (status, result.stderr.decode())


# ------------------------------------------------------------------------------------ ports, env, volumes


def test_only_the_edge_publishes_a_port(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "nginx":
            assert published_ports(service) == [(str(EDGE_PORT), str(EDGE_PORT))]
        else:
            assert published_ports(service) == [], f"{name} publishes a port"


@pytest.mark.parametrize("name", [*APP_SERVICES, "migrate"])
def test_database_and_redis_urls_point_at_the_compose_services(compose: dict[str, Any], name: str) -> None:
    services = compose["services"]
    env = environment(services[name])
    postgres = environment(services["postgres"])
    database = urlsplit(env["DATABASE_URL"])
    assert database.scheme in {"postgresql", "postgres"}
    assert (database.hostname, database.port or 5432) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path.lstrip("/") == postgres["POSTGRES_DB"]
    if name != "migrate":
        redis = urlsplit(env["REDIS_URL"])
        assert (redis.scheme, redis.hostname, redis.port or 6379) == ("redis", "redis", 6379)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_environment(compose: dict[str, Any], name: str) -> None:
    env = environment(compose["services"][name])
    assert env["THREADLINE_ENV"] == "prod"
    assert env["THREADLINE_TRUST_PROXY_HEADERS"] == "true"
    # Plain http on 8080: the prod default (Secure cookies) would lose the session in most browsers.
    assert env["THREADLINE_COOKIE_SECURE"] == "false"
    # Left to its prod default (off); /api/setup creates the first admin.
    assert "THREADLINE_REGISTRATION_ENABLED" not in env


def test_cookie_secure_override_is_explained() -> None:
    lines = COMPOSE_FILE.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if "THREADLINE_COOKIE_SECURE" in line)
    assert lines[index - 1].strip().startswith("#") and "http" in (lines[index - 2] + lines[index - 1])


def test_edge_service_image_and_mounts(compose: dict[str, Any]) -> None:
    nginx = compose["services"]["nginx"]
    assert re.fullmatch(r"nginx:1\.27(\.\d+)?-alpine", nginx["image"])
    mounts = volume_mounts(nginx)
    assert ("./deploy/nginx.conf", "/etc/nginx/nginx.conf", True) in mounts
    assert ("./clients/web", "/usr/share/nginx/html", True) in mounts
    assert (ROOT / "deploy" / "nginx.conf").is_file()


def test_infrastructure_images_and_named_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert re.fullmatch(r"postgres:1[67](\.\d+)*-alpine", services["postgres"]["image"])
    assert re.fullmatch(r"redis:7(\.\d+)*-alpine", services["redis"]["image"])
    postgres_mounts = volume_mounts(services["postgres"])
    assert any(target == "/var/lib/postgresql/data" for _, target, _ in postgres_mounts)
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for source, _, _ in volume_mounts(service):
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
    assert declared, "postgres data should live in a named volume"


# ---------------------------------------------------------------------------------------------- images


def test_build_targets_exist_as_dockerfile_stages(compose: dict[str, Any], stages: dict[str, Stage]) -> None:
    built = {}
    for name, service in compose["services"].items():
        if "build" not in service:
            assert "image" in service, f"{name} has neither build nor image"
            continue
        build = service["build"]
        assert build.get("context", ".") == "."
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
        assert build["target"] in stages, f"{name}: no `FROM ... AS {build['target']}` in the Dockerfile"
        built[name] = build["target"]
    assert built == {name: name for name in TARGETS}


def test_dockerfile_base_image(stages: dict[str, Stage]) -> None:
    for target in TARGETS:
        assert stage_chain(stages, target)[0].base == "python:3.12-slim"


@pytest.mark.parametrize("target", TARGETS)
def test_dockerfile_target_runs_its_console_script_as_non_root(stages: dict[str, Stage], target: str) -> None:
    package_dir, script = TARGETS[target]
    commands = chain_instructions(stages, target, "CMD")
    assert commands, f"{target} has no CMD"
    assert json.loads(commands[-1]) == [script]
    assert script in pyproject(package_dir).get("scripts", {}), f"{script} is not a script of {package_dir}"

    users = chain_instructions(stages, target, "USER")
    assert users, f"{target} runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    runs = " ".join(chain_instructions(stages, target, "RUN"))
    assert re.search(rf"useradd\b[^&;]*\s{re.escape(user)}(\s|$)", runs), f"user {user} is never created"


@pytest.mark.parametrize("target", TARGETS)
def test_dockerfile_target_exposes_its_contract_port(stages: dict[str, Stage], target: str) -> None:
    exposed = {
        int(port.split("/")[0])
        for line in chain_instructions(stages, target, "EXPOSE")
        for port in line.split()
    }
    assert exposed == ({CONTRACT_PORTS[target]} if target in CONTRACT_PORTS else set())


@pytest.mark.parametrize("target", TARGETS)
def test_dockerfile_target_installs_only_its_own_packages(stages: dict[str, Stage], target: str) -> None:
    """Exactly the target's package and its first-party dependencies (from the pyproject files): nothing
    else, and nothing left for pip to look up on an index under a first-party name."""
    package_dir, _ = TARGETS[target]
    assert installed_package_dirs(stages, target) == first_party_closure(package_dir)


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".data", ".git"} <= patterns
    assert {"**/__pycache__", "**/.mypy_cache", "**/.ruff_cache", "**/.pytest_cache"} <= patterns
    assert not patterns & {*PACKAGE_DIRS, "services", "*", "**"}
