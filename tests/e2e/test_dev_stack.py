"""The README's run command: `python -m threadline_devstack run` (what `python3 dev.py run` executes after
installing) brings all four processes and the edge to ready with embedded PostgreSQL and Redis, prints the
web page's URL first, stops everything on Ctrl-C, and keeps the data for the next run."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.stack import python_env
from threadline_devstack.servers import free_port

pytestmark = pytest.mark.e2e
SERVICES = ("API", "STREAMER", "PRESENCE", "ASSISTANT", "EDGE")


@dataclass
class RunningStack:
    proc: subprocess.Popen[str]
    ports: dict[str, int]
    lines: list[str]
    reader: threading.Thread

    def database_url(self) -> str:
        for line in self.lines:
            match = re.search(r"database\s+(postgresql://\S+)", line)
            if match:
                return match[1]
        raise AssertionError("the stack printed no database URL")


def start(data_dir: Path, timeout: float = 60) -> RunningStack:
    ports = {name: free_port() for name in SERVICES}
    env = {**python_env(), "THREADLINE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update({f"THREADLINE_{name}_PORT": str(port) for name, port in ports.items()})
    proc = subprocess.Popen(
        [sys.executable, "-m", "threadline_devstack", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    stack = RunningStack(proc, ports, lines, reader)
    deadline = time.monotonic() + timeout
    while not any("press Ctrl-C to stop" in line for line in list(lines)):
        output = "\n".join(lines[-40:])
        assert time.monotonic() < deadline, f"not ready within {timeout}s:\n{output}"
        assert proc.poll() is None, f"the stack exited with {proc.returncode}:\n{output}"
        time.sleep(0.05)
    return stack


def stop(stack: RunningStack) -> str:
    seen = len(stack.lines)
    stack.proc.send_signal(signal.SIGINT)
    stack.proc.wait(30)
    stack.reader.join(10)
    assert stack.proc.stdout is not None
    stack.proc.stdout.close()
    return "\n".join(stack.lines[seen:])


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


async def _query(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        if ";" in sql:
            await conn.execute(sql)
            return None
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_run_starts_everything_stops_cleanly_and_keeps_data(data_dir: Path) -> None:
    first = start(data_dir)
    children = children_of(first.proc.pid)
    try:
        assert len(children) >= 7, "postgres, redis, four services and caddy run as child processes"
        for name, port in first.ports.items():
            if name != "EDGE":
                assert httpx.get(f"http://127.0.0.1:{port}/readyz").json() == {"ready": True}, name
        edge = f"http://127.0.0.1:{first.ports['EDGE']}"
        said = [line for line in first.lines if line.startswith("threadline |")]
        first_url = next(line for line in said if "http://" in line)
        assert f"open {edge}/" in first_url, "the first URL printed is the web page"
        assert httpx.get(f"{edge}/api/setup").json() == {"is_setup": False}, "the edge reaches the api"
        url = first.database_url()
        asyncio.run(
            _query(url, "CREATE TABLE IF NOT EXISTS kept (note text); INSERT INTO kept VALUES ('hello')")
        )
    finally:
        tail = stop(first)

    assert first.proc.returncode == 0, tail
    assert "PostgreSQL stopped" in tail
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        )
    for port in first.ports.values():
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)

    second = start(data_dir)
    try:
        assert asyncio.run(_query(second.database_url(), "SELECT note FROM kept")) == "hello"
        assert "schema is up to date" in "\n".join(second.lines)
    finally:
        stop(second)
    assert second.proc.returncode == 0
