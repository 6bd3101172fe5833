#!/usr/bin/env python3
"""Threadline developer entry point. Needs only Python 3.11+.

    python3 dev.py run     # install into .venv, start PostgreSQL, Redis and every service
    python3 dev.py test    # install into .venv, then ruff, mypy --strict, pytest
                           # (as root, installs Debian's chromium for the browser test when missing)

Everything else (embedded PostgreSQL, Redis, the services) is installed into `.venv` by this script.
Installation is skipped when nothing it depends on changed since the last run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
PACKAGES = [
    "shared",
    "db",
    "services/api",
    "services/streamer",
    "services/presence",
    "devstack",
    "clients/python",
]
SOURCES = [
    "shared/threadline_shared",
    "db/threadline_db",
    "services/api/threadline_api",
    "services/streamer/threadline_streamer",
    "services/presence/threadline_presence",
    "devstack/threadline_devstack",
    "clients/python/threadline_client",
]


def _stamp() -> str:
    digest = hashlib.sha256()
    for name in [*(f"{p}/pyproject.toml" for p in PACKAGES), "requirements-dev.txt"]:
        digest.update(name.encode())
        digest.update((ROOT / name).read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def _run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def ensure_env() -> None:
    """Create .venv and install every package editable, plus the test tools."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older python3
        sys.exit("Threadline needs Python 3.11 or newer")
    stamp_file = VENV / ".threadline-stamp"
    stamp = _stamp()
    if PY.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    if not PY.exists():
        print("dev.py: creating .venv", flush=True)
        venv.create(VENV, with_pip=True)
    print("dev.py: installing packages into .venv", flush=True)
    _run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv>=0.5")
    editable: list[str] = []
    for package in PACKAGES:
        editable += ["-e", package]
    _run(PY, "-m", "uv", "pip", "install", "--quiet", "--python", PY, *editable, "-r", "requirements-dev.txt")
    stamp_file.write_text(stamp)


CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium() -> None:
    """The browser-grade stream test drives Debian's Chromium (Playwright's own download is not used)."""
    if CHROMIUM.exists():
        return
    if os.geteuid() != 0 or not Path("/usr/bin/apt-get").exists():
        sys.exit("dev.py: the test suite needs /usr/bin/chromium (Debian package 'chromium'); install it")
    print("dev.py: installing Debian's chromium for the browser test", flush=True)
    apt = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(apt, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
        subprocess.run(apt, env=env, stdout=subprocess.DEVNULL, check=True)


def run_stack(args: list[str]) -> int:
    ensure_env()
    os.environ.setdefault("THREADLINE_DATA_DIR", str(ROOT / ".data"))
    os.execv(PY, [str(PY), "-m", "threadline_devstack", "run", *args])
    return 0  # pragma: no cover - execv does not return


def run_tests(args: list[str]) -> int:
    ensure_env()
    ensure_chromium()
    bin_dir = VENV / "bin"
    steps: list[tuple[str, list[str | Path]]] = [
        ("ruff", [bin_dir / "ruff", "check", "."]),
        ("ruff format", [bin_dir / "ruff", "format", "--check", "."]),
        ("mypy", [bin_dir / "mypy", *SOURCES]),
        ("pytest", [bin_dir / "pytest", *args]),
    ]
    for name, cmd in steps:
        print(f"dev.py: {name}", flush=True)
        result = subprocess.run([str(c) for c in cmd], cwd=ROOT)
        if result.returncode != 0:
            print(f"dev.py: {name} failed (exit {result.returncode})", flush=True)
            return result.returncode
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test", "install"}:
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "install":
        ensure_env()
        return 0
    if command == "run":
        return run_stack(rest)
    return run_tests(rest)


if __name__ == "__main__":
    sys.exit(main())
