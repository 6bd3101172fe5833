"""``python3 dev.py run``: the whole stack in one command.

Starts an embedded PostgreSQL and Redis (unless ``DATABASE_URL`` / ``REDIS_URL`` point at real servers)
with their data in ``THREADLINE_DATA_DIR`` (default ``.data`` in the repository), migrates, starts api,
streamer, presence and the assistant worker as separate processes on ``THREADLINE_{API,STREAMER,PRESENCE,
ASSISTANT}_PORT`` (8000-8003), waits until each answers ``/readyz``, then starts the edge (Caddy, on
``THREADLINE_EDGE_PORT``, 8080: the one origin of the web page, the CLI and the Python client) and prints
the URLs, the web page first. On Ctrl-C or SIGTERM it stops the edge and the services, then the servers.
If a process dies, the whole stack stops with an error.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from threadline_db import migrate_url
from threadline_devstack.edge import EDGE, EdgeProcess
from threadline_devstack.servers import EmbeddedPostgres, EmbeddedRedis
from threadline_devstack.services import SERVICES, ServiceProcess, service_environment

READY_TIMEOUT_SECONDS = 60.0


def say(message: str) -> None:
    print(f"threadline | {message}", flush=True)


def _port(variable: str, default: int) -> int:
    raw = os.environ.get(variable, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"{variable} must be a port number, got {raw!r}")
    return int(raw)


def run() -> int:
    data_dir = Path(os.environ.get("THREADLINE_DATA_DIR", Path.cwd() / ".data")).resolve()
    ports = {spec.name: _port(spec.port_variable, spec.default_port) for spec in (*SERVICES, EDGE)}
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    with ExitStack() as cleanup:
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            postgres = EmbeddedPostgres(data_dir / "postgres")
            say(f"starting PostgreSQL (data in {postgres.data_dir})")
            database_url = postgres.start()
            cleanup.callback(postgres.stop)
            cleanup.callback(say, "PostgreSQL stopped")
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis = EmbeddedRedis(data_dir / "redis")
            say(f"starting Redis (data in {redis.data_dir})")
            redis_url = redis.start()
            cleanup.callback(redis.stop)
            cleanup.callback(say, "Redis stopped")
        applied = asyncio.run(migrate_url(database_url))
        say(f"migrations applied: {applied}" if applied else "schema is up to date")

        env = service_environment(database_url, redis_url)
        processes = [ServiceProcess(spec, ports[spec.name], env) for spec in SERVICES]
        for process in processes:
            process.start()
            cleanup.callback(process.stop)
        try:
            for process in processes:
                process.wait_ready(READY_TIMEOUT_SECONDS)
            upstreams = {process.spec.name: process.url for process in processes}
            edge = EdgeProcess(ports["edge"], upstreams, data_dir / "caddy", env)
            edge.start()
            cleanup.callback(edge.stop)
            edge.wait_ready(READY_TIMEOUT_SECONDS)
        except RuntimeError as exc:
            say(f"failed to start: {exc}")
            return 1
        say(f"open {edge.url}/ (the web page; the CLI and the Python client use this URL too)")
        say("ready:")
        processes.append(edge)
        for process in processes:
            say(f"  {process.spec.name:<9} {process.url}")
        say(f"  database  {database_url}")
        say(f"  redis     {redis_url}")
        say("press Ctrl-C to stop")
        while not stop.wait(0.5):
            for process in processes:
                code = process.exited()
                if code is not None:
                    say(f"{process.spec.name} exited with code {code}; stopping the stack")
                    return 1
        say("stopping")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] != ["run"]:
        print("usage: python -m threadline_devstack run", file=sys.stderr)
        return 2
    return run()
