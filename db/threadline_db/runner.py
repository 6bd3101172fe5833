"""Forward-only SQL migration runner.

Migrations are the files ``NNNN_name.sql`` in :data:`MIGRATIONS_DIR`, applied in version order, each in
its own transaction, and recorded in ``schema_migrations`` with the SHA-256 of the file. The runner holds a
PostgreSQL advisory lock for the whole run, so concurrent runners serialise and the second finds nothing
to do.
It refuses to run when an applied file was edited or is missing, or when versions are duplicated or have gaps.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Arbitrary constant key for pg_advisory_lock; "threadline migrations" in spirit.
ADVISORY_LOCK_KEY = 0x7468_726D_6967
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """The migrations on disk and in the database disagree; nothing was applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Read every migration file, in version order; versions must be 1, 2, 3, ... without gaps."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file name must look like 0001_name.sql: {path.name}")
        migrations.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration versions must be contiguous from 1; expected {expected:04d}")
    return migrations


def latest_version(directory: Path = MIGRATIONS_DIR) -> int:
    migrations = discover(directory)
    return migrations[-1].version if migrations else 0


async def applied_versions(conn: asyncpg.Connection) -> dict[int, str]:
    """version -> checksum of every applied migration; empty when the table does not exist yet."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    return {row["version"]: row["checksum"] for row in rows}


def _check_history(on_disk: list[Migration], applied: dict[int, str]) -> None:
    by_version = {m.version: m for m in on_disk}
    for version, checksum in applied.items():
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(f"migration {version:04d} is applied but its file is missing")
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{migration.name}.sql was edited after it was applied; "
                "add a new migration instead"
            )


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply every pending migration; return the versions applied (empty when up to date)."""
    on_disk = discover(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        applied = await applied_versions(conn)
        _check_history(on_disk, applied)
        done: list[int] = []
        for migration in on_disk:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)


async def migrate_url(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        return await migrate(conn, directory)
    finally:
        await conn.close()
