"""Threadline database schema: numbered SQL migrations and their runner."""

from threadline_db.runner import (
    MIGRATIONS_DIR,
    Migration,
    MigrationError,
    applied_versions,
    discover,
    latest_version,
    migrate,
    migrate_url,
)

__all__ = [
    "MIGRATIONS_DIR",
    "Migration",
    "MigrationError",
    "applied_versions",
    "discover",
    "latest_version",
    "migrate",
    "migrate_url",
]
