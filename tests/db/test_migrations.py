"""The migration runner: applies to an empty database, re-runs as a no-op, refuses edited or missing files,
and serialises concurrent runners."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.servers import SuiteServers, create_database, drop_database
from threadline_db import MIGRATIONS_DIR, MigrationError, discover, latest_version, migrate, migrate_url


@pytest.fixture
def empty_database(servers: SuiteServers, request: pytest.FixtureRequest) -> Iterator[str]:
    name = "t_empty_" + request.node.name.lower()[:40].replace("[", "_").replace("]", "_")
    url = create_database(servers, name, template=None)
    yield url
    drop_database(servers, name)


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


async def _applied(url: str) -> list[tuple[int, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        return [(row["version"], row["name"]) for row in rows]
    finally:
        await conn.close()


async def test_applies_every_migration_to_an_empty_database(empty_database: str) -> None:
    applied = await migrate_url(empty_database)

    assert applied == [m.version for m in discover()]
    assert [v for v, _ in await _applied(empty_database)] == applied
    conn = await asyncpg.connect(empty_database)
    try:
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        seed = await conn.fetchrow(
            "SELECT params, description FROM rate_limit_profiles WHERE name='conversation.post'"
        )
    finally:
        await conn.close()
    assert {"users", "sessions", "conversations", "participants", "invites", "messages", "threads"} <= tables
    assert {"message_chunks", "read_watermarks", "event_log", "assistant_jobs"} <= tables
    assert {"rate_limit_profiles", "rate_limit_assignments"} <= tables
    assert seed is not None
    assert seed["description"] == "Default conversation posting limits"


async def test_a_second_run_is_a_no_op(empty_database: str) -> None:
    await migrate_url(empty_database)
    before = await _applied(empty_database)

    assert await migrate_url(empty_database) == []
    assert await _applied(empty_database) == before


async def test_an_edited_applied_migration_is_refused(empty_database: str, migrations_copy: Path) -> None:
    await migrate_url(empty_database, migrations_copy)
    first = sorted(migrations_copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")

    with pytest.raises(MigrationError, match="edited after it was applied"):
        await migrate_url(empty_database, migrations_copy)


async def test_a_missing_applied_migration_is_refused(empty_database: str, migrations_copy: Path) -> None:
    extra = migrations_copy / f"{latest_version() + 1:04d}_extra.sql"
    extra.write_text("CREATE TABLE extra (id int);")
    await migrate_url(empty_database, migrations_copy)
    extra.unlink()

    with pytest.raises(MigrationError, match="file is missing"):
        await migrate_url(empty_database, migrations_copy)


async def test_a_failing_migration_rolls_back_alone(empty_database: str, migrations_copy: Path) -> None:
    good = migrations_copy / f"{latest_version() + 1:04d}_good.sql"
    bad = migrations_copy / f"{latest_version() + 2:04d}_bad.sql"
    good.write_text("CREATE TABLE good (id int);")
    bad.write_text("CREATE TABLE half (id int); SELECT no_such_function();")

    with pytest.raises(asyncpg.UndefinedFunctionError):
        await migrate_url(empty_database, migrations_copy)

    versions = [v for v, _ in await _applied(empty_database)]
    assert versions[-1] == latest_version() + 1
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('half')") is None
    finally:
        await conn.close()


def test_file_names_and_gaps_are_checked(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="contiguous"):
        discover(tmp_path)
    (tmp_path / "0003_c.sql").unlink()
    (tmp_path / "2_bad-name.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"0001_name\.sql"):
        discover(tmp_path)


async def test_concurrent_runners_serialise(empty_database: str) -> None:
    connections = [await asyncpg.connect(empty_database) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(conn) for conn in connections))
    finally:
        for conn in connections:
            await conn.close()

    assert sorted(results, key=len) == [[], [], [], [m.version for m in discover()]]
    assert len(await _applied(empty_database)) == latest_version()


def test_the_cli_migrates_and_reports(empty_database: str) -> None:
    env = {**os.environ, "DATABASE_URL": empty_database}
    first = subprocess.run(
        [sys.executable, "-m", "threadline_db"], env=env, capture_output=True, text=True, timeout=60
    )
    second = subprocess.run(
        [sys.executable, "-m", "threadline_db"], env=env, capture_output=True, text=True, timeout=60
    )

    assert first.returncode == 0, first.stderr
    assert "applied 0001" in first.stdout
    assert second.returncode == 0
    assert f"up to date at {latest_version():04d}" in second.stdout


def test_the_cli_exits_non_zero_when_the_database_is_unreachable() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    done = subprocess.run(
        [sys.executable, "-m", "threadline_db"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 1
    assert "cannot reach the database" in done.stderr
