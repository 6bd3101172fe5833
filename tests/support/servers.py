"""The real PostgreSQL and Redis the suite runs against, started once per test session.

A template database is migrated once; each test module gets its own database cloned from it; tests leave
it clean with :func:`reset_database` (TRUNCATE, then the migration's seed rows again, since NOTIFY needs real
commits and so tests cannot hide in rolled-back transactions).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from threadline_db import migrate_url
from threadline_devstack.servers import EmbeddedPostgres, EmbeddedRedis

TEMPLATE_DB = "threadline_template"
# Tables whose rows are configuration rather than test data are re-seeded after each TRUNCATE.
SEED_SQL = """
INSERT INTO rate_limit_profiles (name, algorithm, params, description)
VALUES ('conversation.post', 'gcra', '{"requests_per_second": 5, "burst": 10}',
        'Default conversation posting limits')
ON CONFLICT (name) DO NOTHING
"""


@dataclass
class SuiteServers:
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis

    def database_url(self, name: str) -> str:
        return self.postgres.url(name)

    @property
    def redis_url(self) -> str:
        return self.redis.url()


def start_servers(base: Path) -> SuiteServers:
    postgres = EmbeddedPostgres(base / "postgres", database=TEMPLATE_DB, durable=False)
    redis = EmbeddedRedis(base / "redis", durable=False)
    postgres.start()
    try:
        redis.start()
        asyncio.run(migrate_url(postgres.url(TEMPLATE_DB)))
    except BaseException:
        postgres.stop()
        redis.stop()
        raise
    return SuiteServers(postgres, redis)


async def _admin(servers: SuiteServers, sql: str) -> None:
    conn = await asyncpg.connect(servers.database_url("postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def database_name(label: str) -> str:
    return "t_" + re.sub(r"[^a-z0-9_]", "_", label.lower())[-50:]


def create_database(servers: SuiteServers, name: str, *, template: str | None = TEMPLATE_DB) -> str:
    """A fresh database (a clone of the migrated template by default); returns its URL."""
    clause = f' TEMPLATE "{template}"' if template else ""
    asyncio.run(_admin(servers, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_admin(servers, f'CREATE DATABASE "{name}"{clause}'))
    return servers.database_url(name)


def drop_database(servers: SuiteServers, name: str) -> None:
    asyncio.run(_admin(servers, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def package_database(servers: SuiteServers, package: str) -> Iterator[str]:
    """The body of a package-scoped ``database_url`` fixture: one database for a package whose tests share a
    stack (``pool`` empties its tables after each test)."""
    name = database_name(package)
    url = create_database(servers, name)
    yield url
    drop_database(servers, name)


async def reset_database(conn: asyncpg.Connection) -> None:
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
    )
    if tables:
        names = ", ".join(f'"{row["tablename"]}"' for row in tables)
        for attempt in range(5):
            # A service process of the test may still be working (the assistant worker polls jobs): TRUNCATE
            # takes its locks table by table, so PostgreSQL may pick it as a deadlock victim. Try again.
            try:
                await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
                break
            except asyncpg.DeadlockDetectedError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.05)
    await conn.execute(SEED_SQL)
