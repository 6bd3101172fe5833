"""The ``threadline`` CLI as a person uses it: one config directory per person (their stored session), run
in-process with typer's runner (in a worker thread: each command runs its own event loop) or as a process."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from tests.support.stack import python_env
from threadline_client.cli import app

THREADLINE = Path(sys.executable).parent / "threadline"
WIDE = "200"  # rich wraps tables at 80 columns when there is no terminal; ids stay on one line at 200


@dataclass
class Terminal:
    url: str
    config_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {"THREADLINE_URL": self.url, "THREADLINE_CONFIG_DIR": str(self.config_dir), "COLUMNS": WIDE}

    async def __call__(self, *args: str, input: str | None = None) -> Result:
        runner = CliRunner()
        return await asyncio.to_thread(lambda: runner.invoke(app, list(args), input=input, env=self.env))

    async def ok(self, *args: str, input: str | None = None) -> str:
        """Run a command that must succeed; its stdout."""
        result = await self(*args, input=input)
        assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}"
        assert not result.stderr, result.stderr
        return result.stdout

    async def json(self, *args: str) -> Any:
        return json.loads(await self.ok(*args, "--json"))

    async def spawn(self, *args: str, **extra_env: str) -> asyncio.subprocess.Process:
        """``threadline ARGS`` as a process of its own, stdout and stderr piped, with Ctrl-C (SIGINT) acting
        as in a terminal: a suite started in the background (``cmd &`` without job control) ignores SIGINT,
        every child inherits that, and Python then keeps ignoring it. Seen in CI: the tail tests' Ctrl-C did
        nothing (py-spy showed the CLI idle in its event loop)."""
        return await asyncio.create_subprocess_exec(
            str(THREADLINE),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**python_env(), **self.env, **extra_env},
            preexec_fn=_default_sigint,
        )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
