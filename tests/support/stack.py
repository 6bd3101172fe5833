"""End-to-end: the real service processes on free loopback ports, against the test servers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from threadline_devstack.edge import EdgeProcess
from threadline_devstack.servers import free_port
from threadline_devstack.services import SERVICES, ServiceProcess, service_environment


@dataclass
class Stack:
    """The service processes by name; with ``edge=True`` also ``"edge"``, Caddy in front of them."""

    processes: dict[str, ServiceProcess]
    log_dir: Path

    def url(self, service: str) -> str:
        return self.processes[service].url

    @property
    def edge_url(self) -> str:
        """The one origin (web page, /api/*) when the stack was started with ``edge=True``."""
        return self.processes["edge"].url

    def logs(self, service: str) -> str:
        return (self.log_dir / f"{service}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in reversed(self.processes.values()):  # the edge first
            process.stop()


@contextmanager
def running_stack(
    database_url: str,
    redis_url: str,
    log_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    *,
    edge: bool = False,
) -> Iterator[Stack]:
    """The services (and with ``edge=True`` Caddy in front) for the ``with`` block; stopped after it."""
    env = service_environment(database_url, redis_url)
    for key in [k for k in env if k.startswith("THREADLINE_")]:
        del env[key]  # the developer's own settings must not leak into tests
    env.update(
        {
            "THREADLINE_ENV": "test",
            "THREADLINE_LOG_LEVEL": "info",
            "THREADLINE_PASSWORD_HASHING": "fast",
            **(extra_env or {}),
        }
    )
    env.pop("PYTEST_CURRENT_TEST", None)
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = {
        spec.name: ServiceProcess(spec, free_port(), env, log_path=log_dir / f"{spec.name}.log")
        for spec in SERVICES
    }
    stack = Stack(processes, log_dir)
    try:
        for process in processes.values():
            process.start()
        for process in processes.values():
            process.wait_ready(60)
        if edge:
            upstreams = {name: process.url for name, process in processes.items()}
            caddy = EdgeProcess(free_port(), upstreams, log_dir / "caddy", env, log_path=log_dir / "edge.log")
            processes["edge"] = caddy
            caddy.start()
            caddy.wait_ready(30)
        yield stack
    finally:
        stack.stop()


async def start_again(process: ServiceProcess) -> ServiceProcess:
    """``process`` running: started again (and ready) if an earlier test killed or stopped it."""
    if process.exited() is not None:
        process.start()
        await asyncio.to_thread(process.wait_ready, 30)
    return process


def python_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
