"""Service processes: start one of Threadline's processes, prefix or capture its log, wait for ``/readyz``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from threadline_devstack.servers import die_with_parent


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    port_variable: str
    default_port: int


SERVICES = (
    ServiceSpec("api", "threadline_api", "THREADLINE_API_PORT", 8000),
    ServiceSpec("streamer", "threadline_streamer", "THREADLINE_STREAMER_PORT", 8001),
    ServiceSpec("presence", "threadline_presence", "THREADLINE_PRESENCE_PORT", 8002),
    ServiceSpec("assistant", "threadline_api.assistant", "THREADLINE_ASSISTANT_PORT", 8003),
)
_COLOURS = {"api": "36", "streamer": "35", "presence": "33", "assistant": "32", "edge": "34"}


def _pump(stream: IO[bytes], prefix: str, out: IO[str]) -> None:
    for raw in iter(stream.readline, b""):
        out.write(f"{prefix} {raw.decode(errors='replace').rstrip()}\n")
        out.flush()


@dataclass
class ServiceProcess:
    """One running service. Its output goes to ``log_path`` when given, else to stdout with a prefix."""

    spec: ServiceSpec
    port: int
    env: dict[str, str]
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _pump_thread: threading.Thread | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        """The command line and environment of the process."""
        return [sys.executable, "-m", self.spec.module], {**self.env, "THREADLINE_PORT": str(self.port)}

    def start(self) -> None:
        command, env = self.command()
        if self.log_path is not None:
            with self.log_path.open("ab") as log_file:
                self.proc = subprocess.Popen(
                    command, env=env, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=die_with_parent()
                )
            return
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=die_with_parent()
        )
        assert self.proc.stdout is not None
        colour = _COLOURS.get(self.spec.name, "0")
        prefix = (
            f"\033[{colour}m{self.spec.name:>9} |\033[0m" if sys.stdout.isatty() else f"{self.spec.name:>9} |"
        )
        self._pump_thread = threading.Thread(
            target=_pump, args=(self.proc.stdout, prefix, sys.stdout), daemon=True
        )
        self._pump_thread.start()

    ready_path = "/readyz"

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.name} exited with code {self.proc.returncode} before it was ready"
                )
            if self.is_ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.spec.name} was not ready on port {self.port} within {timeout:.0f}s")

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=2)


def service_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of a service: ours (every ``THREADLINE_*`` passes through) plus the servers' URLs."""
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url
    env["REDIS_URL"] = redis_url
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
