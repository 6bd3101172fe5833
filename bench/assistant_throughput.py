"""Benchmark: tokens/s one assistant worker sustains across N concurrent replies, and database transactions
per reply.

    .venv/bin/python bench/assistant_throughput.py --replies 20 --deltas 2000

Starts its own PostgreSQL (embedded) and Redis, one api process and one assistant worker process with the
``scripted`` provider (``--deltas`` one-word deltas per reply, no delay) and a concurrency of ``--replies``.
One user posts ``--replies`` messages at once, each in its own conversation, so that all replies stream
concurrently; each reply is batched into chunks of 64 deltas (the contract's flush size; with no delay the
50 ms timer never fires first) and finished.

Printed:
- tokens/s: all deltas of all replies divided by the span from the first job start to the last job finish
  (the jobs' own ``started_at``/``finished_at``), so HTTP posting is not counted;
- the worker's transactions per reply, counted from the data: 1 job start + 1 per chunk + 1 finish;
- write transactions per reply as PostgreSQL counts them (transaction ids assigned during the run): the
  above plus the post itself and any lease renewal.

Not counted: read-only transactions, which do not depend on the reply's length: the api's session and
membership reads for the post, and the worker's polls (one claim attempt a second and after each finish, one
cancel-flag read every 500 ms while jobs run, one lapsed-lease check a second). ``pg_stat_database`` cannot
count them reliably here: idle backends report their statistics late.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from threadline_db import migrate_url
from threadline_devstack.servers import EmbeddedPostgres, EmbeddedRedis, free_port
from threadline_devstack.services import SERVICES, ServiceProcess, service_environment

API = next(spec for spec in SERVICES if spec.name == "api")
ASSISTANT = next(spec for spec in SERVICES if spec.name == "assistant")
PASSWORD = "benchmark password"
FLUSH_MAX_TOKENS = 64


async def setup(url: str, replies: int) -> tuple[str, list[str]]:
    """The setup user's token and ``replies`` conversations (assistant replies on)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        body = {"username": "bench", "email": "bench@bench.example", "password": PASSWORD}
        (await http.post("/api/setup", json=body)).raise_for_status()
        login = await http.post("/api/auth/login", json={"email": "bench", "password": PASSWORD})
        login.raise_for_status()
        token = login.json()["session_token"]
        http.cookies.clear()
        headers = {"Authorization": f"Bearer {token}"}
        conversations = []
        for index in range(replies):
            created = await http.post("/api/conversations", headers=headers, json={"title": f"bench {index}"})
            created.raise_for_status()
            conversations.append(created.json()["conversation_id"])
        return token, conversations


async def post_all(url: str, token: str, conversations: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
        posted = await asyncio.gather(
            *(http.post(f"/api/threads/{c}/root", json={"content": "go"}) for c in conversations)
        )
    for response in posted:
        response.raise_for_status()


async def next_xid(conn: asyncpg.Connection) -> int:
    """A new transaction id: the calling transaction takes one, so ids used in between = difference - 1."""
    xid: int = await conn.fetchval("SELECT txid_current()")
    return xid


async def wait_done(conn: asyncpg.Connection, count: int) -> None:
    while True:
        if await conn.fetchval("SELECT count(*) FROM assistant_jobs WHERE status = 'done'") >= count:
            return
        await asyncio.sleep(0.05)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg", durable=not args.no_fsync)
        redis = EmbeddedRedis(Path(tmp) / "redis", durable=False)
        database_url, redis_url = postgres.start(), redis.start()
        processes: list[ServiceProcess] = []
        try:
            await migrate_url(database_url)
            env = service_environment(database_url, redis_url)
            env.update(
                {
                    "THREADLINE_ENV": "prod",
                    "THREADLINE_RATE_LIMIT_ENABLED": "false",
                    "THREADLINE_REGISTRATION_ENABLED": "true",
                    "THREADLINE_LOG_LEVEL": "warning",
                    "THREADLINE_PASSWORD_HASHING": "fast",
                    "THREADLINE_ASSISTANT_PROVIDER": "scripted",
                    "THREADLINE_SCRIPTED_DELTAS": json.dumps([f" w{n}" for n in range(args.deltas)]),
                    "THREADLINE_SCRIPTED_DELAY_MS": "0",
                    "THREADLINE_ASSISTANT_CONCURRENCY": str(args.replies),
                    "THREADLINE_ASSISTANT_TIMEOUT_SECONDS": "0",
                }
            )
            api = ServiceProcess(API, free_port(), env, log_path=Path(tmp) / "api.log")
            worker = ServiceProcess(ASSISTANT, free_port(), env, log_path=Path(tmp) / "assistant.log")
            processes += [api, worker]
            for process in processes:
                process.start()
            for process in processes:
                process.wait_ready(60)
            token, conversations = await setup(api.url, args.replies)
            conn = await asyncpg.connect(database_url)
            try:
                xid_before = await next_xid(conn)
                await post_all(api.url, token, conversations)
                async with asyncio.timeout(args.timeout):
                    await wait_done(conn, args.replies)
                xid_after = await next_xid(conn)
                span = await conn.fetchrow(
                    "SELECT extract(epoch FROM max(finished_at) - min(started_at)) AS seconds, "
                    "count(*) FILTER (WHERE finish_reason = 'stop') AS stopped FROM assistant_jobs"
                )
                chunks = await conn.fetchval("SELECT count(*) FROM message_chunks")
                lengths = await conn.fetch(
                    "SELECT length(content) AS n FROM messages "
                    "WHERE role = 'assistant' AND status = 'complete'"
                )
            finally:
                await conn.close()
        finally:
            for process in processes:
                process.stop()
            redis.stop()
            postgres.stop()
    assert span is not None
    seconds = float(span["seconds"])
    tokens = args.replies * args.deltas
    expected_length = len("".join(f" w{n}" for n in range(args.deltas)))
    complete = sum(1 for row in lengths if row["n"] == expected_length)
    print(f"replies            {args.replies} concurrent, {args.deltas} deltas each, one worker")
    print(f"postgres fsync     {'off' if args.no_fsync else 'on'}")
    print(f"complete replies   {complete}/{args.replies} (finish stop: {span['stopped']})")
    print(f"generation span    {seconds:.2f} s (first job start to last finish)")
    print(f"tokens/s           {tokens / seconds:,.0f}")
    per_reply = chunks / args.replies
    print(f"chunks             {chunks} ({per_reply:.1f} per reply, flush at {FLUSH_MAX_TOKENS})")
    writes = xid_after - xid_before - 1  # minus the probe's own transaction id
    print(f"worker txns/reply  {per_reply + 2:.1f} (1 job start + 1 per chunk + 1 finish)")
    print(f"write txns/reply   {writes / args.replies:.1f} (transaction ids used; the post included)")
    print(f"cpu count          {os.cpu_count()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replies", type=int, default=20)
    parser.add_argument("--deltas", type=int, default=2000, help="deltas (tokens) per reply")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--no-fsync", action="store_true", help="PostgreSQL without fsync (memory-speed commits)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
