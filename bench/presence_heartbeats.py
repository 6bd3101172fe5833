"""Benchmark: heartbeats one presence process handles; prints heartbeats/s and latency percentiles.

    .venv/bin/python bench/presence_heartbeats.py --clients 512 --seconds 15

Starts its own PostgreSQL and Redis (embedded) and one presence process, creates one user and session per
client (below the API: rows and ``SessionService.issue``) in a few shared conversations, then the clients
send ``POST /api/presence/heartbeat`` over keep-alive HTTP/1.1 connections with bearer tokens (a raw asyncio
client, so that the load generator costs little CPU). Every ``--away-every``-th heartbeat of a client flips
its status, so that a share of the calls are transitions that publish ``presence.update`` to every
conversation of the user (0 = steady state only: no transition after the first). Each heartbeat verifies
the session in PostgreSQL, runs the HTTP rate limit (GCRA script; the ``default`` profile is raised so that
nothing is denied, ``--no-rate-limit`` turns it off) and the heartbeat script in Redis. The goal (issue 6):
at least 5,000 heartbeats/s for one presence process. Capacity needs enough clients that the process is
never idle waiting for them: each client has one heartbeat in flight, and the service answers a loop turn's
heartbeats as one batch, so 64 clients measure their own round trips more than the service (512 is the
default).

Besides wall-clock throughput it prints the presence process's CPU time per heartbeat (from
``/proc/<pid>/stat``), which stays meaningful when other work shares the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from threadline_db import migrate_url
from threadline_devstack.servers import EmbeddedPostgres, EmbeddedRedis, free_port
from threadline_devstack.services import SERVICES, ServiceProcess, service_environment
from threadline_shared.clock import SystemClock
from threadline_shared.db import create_pool
from threadline_shared.sessions import SessionService
from threadline_shared.settings import Settings

PRESENCE = next(spec for spec in SERVICES if spec.name == "presence")
CONVERSATIONS = 4
# A syntactically valid Argon2id string; these users never log in.
UNUSABLE_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"


async def setup(database_url: str, clients: int) -> list[str]:
    """One user and bearer token per client; every user in each of a few conversations."""
    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        sessions = SessionService(pool, Settings.load(env="prod"), SystemClock())
        tokens: list[str] = []
        user_ids = []
        for index in range(clients):
            row = await pool.fetchrow(
                "INSERT INTO users (username, email, password_hash) VALUES ($1, $2, $3) RETURNING *",
                f"user{index}",
                f"user{index}@bench.example",
                UNUSABLE_HASH,
            )
            assert row is not None
            user_ids.append(row["id"])
            tokens.append((await sessions.issue(row, via_cookie=False)).token)
        for number in range(CONVERSATIONS):
            conversation_id = await pool.fetchval(
                "INSERT INTO conversations (title, assistant_replies, created_by) VALUES ($1, false, $2) "
                "RETURNING id",
                f"bench {number}",
                user_ids[0],
            )
            await pool.executemany(
                "INSERT INTO participants (conversation_id, user_id, role) VALUES ($1, $2, $3)",
                [
                    (conversation_id, user_id, "owner" if i == 0 else "member")
                    for i, user_id in enumerate(user_ids)
                ],
            )
        return tokens
    finally:
        await pool.close()


def request_bytes(token: str, status: str) -> bytes:
    body = f'{{"status":"{status}"}}'.encode()
    return (
        f"POST /api/presence/heartbeat HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def client(
    port: int, token: str, deadline: float, latencies: list[float], away_every: int
) -> tuple[int, int]:
    """Heartbeats until ``deadline``; returns (calls that were not 204, transitions sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    requests = {status: request_bytes(token, status) for status in ("online", "away")}
    status, errors, flips, sent = "online", 0, 0, 0
    try:
        while time.perf_counter() < deadline:
            sent += 1
            if away_every and sent % away_every == 0:
                status = "away" if status == "online" else "online"
                flips += 1
            started = time.perf_counter()
            writer.write(requests[status])
            head = await reader.readuntil(b"\r\n\r\n")  # one read per response: the generator stays cheap
            status_line, _, fields = head.partition(b"\r\n")
            at = fields.lower().find(b"content-length:")
            if at >= 0:
                await reader.readexactly(int(fields[at + 15 : fields.index(b"\r\n", at)]))
            latencies.append(time.perf_counter() - started)
            if not status_line.startswith(b"HTTP/1.1 204"):
                errors += 1
    finally:
        writer.close()
    return errors, flips


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg", durable=True)
        redis = EmbeddedRedis(Path(tmp) / "redis", durable=False)
        database_url, redis_url = postgres.start(), redis.start()
        process: ServiceProcess | None = None
        try:
            await migrate_url(database_url)
            tokens = await setup(database_url, args.clients)
            env = service_environment(database_url, redis_url)
            env.update(
                {
                    "THREADLINE_ENV": "prod",
                    "THREADLINE_LOG_LEVEL": args.log_level,
                    "THREADLINE_DATABASE_POOL_MAX_SIZE": str(args.pool_size),
                    "THREADLINE_RATE_LIMIT_ENABLED": "false" if args.no_rate_limit else "true",
                    "THREADLINE_RATE_LIMIT_DEFAULT_RPS": "10000",
                    "THREADLINE_RATE_LIMIT_DEFAULT_BURST": "10000",
                }
            )
            process = ServiceProcess(PRESENCE, free_port(), env, log_path=Path(tmp) / "presence.log")
            process.start()
            process.wait_ready(60)
            port = process.port
            warmup = time.perf_counter() + 2
            await asyncio.gather(*(client(port, token, warmup, [], 0) for token in tokens))
            assert process.proc is not None
            latencies: list[float] = []
            cpu_before = cpu_seconds(process.proc.pid)
            started = time.perf_counter()
            deadline = started + args.seconds
            results = await asyncio.gather(
                *(client(port, token, deadline, latencies, args.away_every) for token in tokens)
            )
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(process.proc.pid) - cpu_before
        finally:
            if process is not None:
                process.stop()
            redis.stop()
            postgres.stop()
    errors = sum(result[0] for result in results)
    flips = sum(result[1] for result in results)
    print("presence processes 1")
    print(f"clients            {args.clients}")
    print(f"heartbeats         {len(latencies)} in {elapsed:.1f} s ({errors} non-204, {flips} transitions)")
    print(f"heartbeats/s       {len(latencies) / elapsed:,.0f}")
    print(f"latency p50        {percentile(latencies, 0.50) * 1000:.1f} ms")
    print(f"latency p99        {percentile(latencies, 0.99) * 1000:.1f} ms")
    print(f"latency mean       {statistics.fmean(latencies) * 1000:.1f} ms")
    print(f"presence cpu       {cpu:.1f} s = {cpu / elapsed:.0%} of one core")
    print(f"cpu per heartbeat  {cpu / len(latencies) * 1e6:.0f} us")
    print(f"per cpu-second     {len(latencies) / cpu:,.0f} heartbeats")
    print(f"rate limit         {'off' if args.no_rate_limit else 'on'}")
    print(f"cpu count          {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--away-every", type=int, default=0, help="flip status every N heartbeats (0 = never)"
    )
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--no-rate-limit", action="store_true", help="THREADLINE_RATE_LIMIT_ENABLED=false")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    uvloop.run(run(parser.parse_args()))  # lean: the load generator must not be the limit


if __name__ == "__main__":
    main()
