"""``threadline-migrate``: apply pending migrations to ``DATABASE_URL`` and exit."""

from __future__ import annotations

import asyncio
import os
import sys

from threadline_db.runner import MigrationError, latest_version, migrate_url

DEFAULT_URL = "postgresql://threadline:threadline@localhost:5432/threadline"


def main() -> int:
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    try:
        applied = asyncio.run(migrate_url(url))
    except MigrationError as exc:
        print(f"threadline-migrate: refused: {exc}", file=sys.stderr)
        return 1
    except (OSError, ConnectionError) as exc:
        print(f"threadline-migrate: cannot reach the database: {exc}", file=sys.stderr)
        return 1
    if applied:
        print(f"threadline-migrate: applied {', '.join(f'{v:04d}' for v in applied)}")
    else:
        print(f"threadline-migrate: up to date at {latest_version():04d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
