"""The README's test command (`python3 dev.py test`) runs ruff, ruff format, mypy and pytest in that order and
fails, without running the rest, as soon as one of them fails."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_command", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("failing", "ran"), [("ruff", 1), ("mypy", 3), ("pytest", 4), (None, 4)])
def test_the_test_command_stops_at_the_first_failing_gate(
    monkeypatch: pytest.MonkeyPatch, failing: str | None, ran: int
) -> None:
    dev = load_dev()
    calls: list[list[str]] = []

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        tool = Path(command[0]).name
        is_format = command[1:2] == ["format"]
        code = 1 if tool == failing and not is_format else 0
        return subprocess.CompletedProcess(command, code)

    monkeypatch.setattr(dev, "ensure_env", lambda: None)
    monkeypatch.setattr(dev, "ensure_chromium", lambda: None)
    monkeypatch.setattr(dev.subprocess, "run", run)

    code = dev.run_tests(["-x"])

    assert code == (0 if failing is None else 1)
    assert [Path(call[0]).name for call in calls] == ["ruff", "ruff", "mypy", "pytest"][:ran]
    assert calls[0][1:] == ["check", "."]
    if ran >= 3:
        assert calls[2][1:] == dev.SOURCES, "mypy --strict (pyproject) runs on every source package"
    if ran == 4:
        assert calls[3][1:] == ["-x"], "extra arguments go to pytest"


def test_every_source_package_is_type_checked() -> None:
    dev = load_dev()
    found = [*ROOT.glob("*/threadline_*/__init__.py")]
    for parent in ("services", "clients"):
        found += ROOT.glob(f"{parent}/*/threadline_*/__init__.py")
    packages = {path.parent.relative_to(ROOT).as_posix() for path in found}
    assert packages == set(dev.SOURCES)
    installed = {Path(source).parent.as_posix() for source in dev.SOURCES}
    assert installed == set(dev.PACKAGES), "every source package is installed by dev.py"
