"""Where the CLI keeps its session tokens: ``credentials.json`` in the user's config directory (platformdirs,
or ``THREADLINE_CONFIG_DIR``), one entry per server URL, readable by the user only (mode 0600)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs

CONFIG_DIR_VARIABLE = "THREADLINE_CONFIG_DIR"
CREDENTIALS_FILE = "credentials.json"


def default_config_dir() -> Path:
    return Path(platformdirs.user_config_dir("threadline", appauthor=False))


@dataclass(frozen=True)
class Credentials:
    """A session on one server: the bearer token and whose it is."""

    token: str
    username: str
    user_id: str


class CredentialStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / CREDENTIALS_FILE

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            return {}  # a damaged file is treated as empty; the next login rewrites it
        servers = data.get("servers") if isinstance(data, dict) else None
        return servers if isinstance(servers, dict) else {}

    def _write(self, servers: dict[str, Any]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A new file of our own (mkstemp: 0600 from the start, O_EXCL, never a planted file or symlink), then
        # renamed over the old one: the token is never readable by others, not even for a moment.
        fd, temporary = tempfile.mkstemp(prefix=".credentials-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump({"servers": servers}, file, indent=2)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def load(self, url: str) -> Credentials | None:
        entry = self._read().get(url)
        if not isinstance(entry, dict):
            return None
        try:
            return Credentials(str(entry["token"]), str(entry["username"]), str(entry["user_id"]))
        except KeyError:
            return None

    def save(self, url: str, credentials: Credentials) -> None:
        servers = self._read()
        servers[url] = asdict(credentials)
        self._write(servers)

    def forget(self, url: str) -> None:
        servers = self._read()
        if servers.pop(url, None) is not None:
            self._write(servers)
