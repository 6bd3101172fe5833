"""Benchmark: replies posted over HTTP with N concurrent clients; prints posts/s and latency percentiles.

    .venv/bin/python bench/api_posts.py --clients 32 --seconds 10 --api-processes 2

Starts its own PostgreSQL and Redis (embedded, durable settings) and N api processes, sets up users and one
conversation with a thread, then N clients post replies to the thread over keep-alive HTTP/1.1 connections
(a raw asyncio client, so that the load generator costs little CPU), spread over the api processes; each
client posts into its own conversation (posts within one conversation serialise on its event counter). Rate
limits are switched off (the benchmark measures the write path, not the limiter; ``--rate-limits`` turns
them on, with the posting limit raised so that no post is refused) and the conversation has
``assistant_replies`` off. The other two participants never read: every post counts their growing unread
for them (cached per thread, see db migration 0002). It prints posts/s, latency percentiles, the CPU per
post of the api processes and of PostgreSQL, and a reference loop timed before and after (the shared
development host's speed varied twofold within minutes). The goal (DESIGN 5): at least 1,000 posts/s,
p99 at most 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hostspeed import reference_loop_seconds

from threadline_db import migrate_url
from threadline_devstack.servers import EmbeddedPostgres, EmbeddedRedis, free_port
from threadline_devstack.services import SERVICES, ServiceProcess, service_environment

API = next(spec for spec in SERVICES if spec.name == "api")
PASSWORD = "benchmark password"


async def setup(url: str, clients: int, members: int) -> tuple[list[str], list[str]]:
    """One user per client; each client owns a conversation with ``members`` participants and a thread.
    Returns each client's token and the root it replies to."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        tokens, user_ids = [], []
        for index in range(clients):
            name = f"user{index}"
            body = {"username": name, "email": f"{name}@bench.example", "password": PASSWORD}
            created = await http.post("/api/setup" if index == 0 else "/api/auth/register", json=body)
            created.raise_for_status()
            login = await http.post("/api/auth/login", json={"email": name, "password": PASSWORD})
            login.raise_for_status()
            tokens.append(login.json()["session_token"])
            user_ids.append(created.json()["id"])
            http.cookies.clear()
        roots = []
        for index in range(clients):
            owner = {"Authorization": f"Bearer {tokens[index]}"}
            conversation = await http.post(
                "/api/conversations", headers=owner, json={"title": f"bench {index}", "is_group": True}
            )
            conversation_id = conversation.json()["conversation_id"]
            for offset in range(1, min(members, clients)):
                added = await http.post(
                    f"/api/conversations/{conversation_id}/participants",
                    headers=owner,
                    json={"user_id": user_ids[(index + offset) % clients]},
                )
                added.raise_for_status()
            root = await http.post(
                f"/api/threads/{conversation_id}/root", headers=owner, json={"content": "root"}
            )
            root.raise_for_status()
            roots.append(root.json()["root_id"])
        return tokens, roots


async def client(port: int, token: str, root_id: str, deadline: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"content": "a reply of ordinary length for the benchmark"}).encode()
    request = (
        f"POST /api/messages/{root_id}/reply HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    errors = 0
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.startswith(b"HTTP/1.1 201"):
                errors += 1
    finally:
        writer.close()
    return errors


def cpu_seconds(pids: set[int], with_children: bool = False) -> float:
    """User + system CPU of the processes ``pids`` (and of their children), from /proc."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(entry) in pids or (with_children and int(fields[1]) in pids):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def steal_seconds() -> float:
    """CPU time the hypervisor gave to others while this machine's processes wanted it (``steal`` in
    /proc/stat), summed over the CPUs: on a shared virtual host it is one cause of runs that vary."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    loop_before = reference_loop_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg", durable=not args.no_fsync)
        redis = EmbeddedRedis(Path(tmp) / "redis", durable=False)
        database_url, redis_url = postgres.start(), redis.start()
        processes: list[ServiceProcess] = []
        try:
            await migrate_url(database_url)
            if args.rate_limits:  # every post still allowed: the figure is the cost of deciding
                raised = '{"requests_per_second": 100000, "burst": 100000}'
                connection = await asyncpg.connect(database_url)
                await connection.execute(
                    "UPDATE rate_limit_profiles SET params = $1 WHERE name = 'conversation.post'", raised
                )
                await connection.close()
            env = service_environment(database_url, redis_url)
            env.update(
                {
                    "THREADLINE_ENV": "prod",
                    "THREADLINE_RATE_LIMIT_ENABLED": "true" if args.rate_limits else "false",
                    "THREADLINE_REGISTRATION_ENABLED": "true",
                    "THREADLINE_LOG_LEVEL": "warning",
                    "THREADLINE_PASSWORD_HASHING": "fast",  # setup speed only; posts hash nothing
                    "THREADLINE_LOGIN_PER_IP_PER_MINUTE": "10000",  # the setup logs every client in
                    "THREADLINE_DATABASE_POOL_MAX_SIZE": str(args.pool_size),
                }
            )
            for index in range(args.api_processes):
                process = ServiceProcess(API, free_port(), env, log_path=Path(tmp) / f"api{index}.log")
                process.start()
                processes.append(process)
            for process in processes:
                process.wait_ready(60)
            tokens, roots = await setup(processes[0].url, args.clients, args.members)
            latencies: list[float] = []
            warmup_deadline = time.perf_counter() + 2
            await asyncio.gather(
                *(
                    client(processes[i % len(processes)].port, tokens[i], roots[i], warmup_deadline, [])
                    for i in range(args.clients)
                )
            )
            # Statistics as autovacuum keeps them in a running deployment. A fresh database has none until
            # its first autovacuum round (a minute): the planner then took the thread-tree index for the
            # unread counts and read whole threads.
            analyzer = await asyncpg.connect(database_url)
            await analyzer.execute("VACUUM ANALYZE")
            await analyzer.close()
            assert postgres.proc is not None
            api_pids = {process.proc.pid for process in processes if process.proc is not None}
            postgres_pids = {postgres.proc.pid}
            steal_before = steal_seconds()
            api_before = cpu_seconds(api_pids)
            postgres_before = cpu_seconds(postgres_pids, with_children=True)
            started = time.perf_counter()
            deadline = started + args.seconds
            errors = await asyncio.gather(
                *(
                    client(processes[i % len(processes)].port, tokens[i], roots[i], deadline, latencies)
                    for i in range(args.clients)
                )
            )
            elapsed = time.perf_counter() - started
            api_cpu = cpu_seconds(api_pids) - api_before
            postgres_cpu = cpu_seconds(postgres_pids, with_children=True) - postgres_before
            steal = steal_seconds() - steal_before
        finally:
            for process in processes:
                process.stop()
            redis.stop()
            postgres.stop()
    print(f"api processes      {args.api_processes}")
    print(f"clients            {args.clients} (one conversation each, {args.members} participants)")
    print(f"postgres fsync     {'off' if args.no_fsync else 'on'}")
    print(f"rate limiting      {'on (posting limit raised)' if args.rate_limits else 'off'}")
    print(f"posts              {len(latencies)} in {elapsed:.1f} s ({sum(errors)} non-201)")
    print(f"posts/s            {len(latencies) / elapsed:,.0f}")
    print(f"latency p50        {percentile(latencies, 0.50) * 1000:.1f} ms")
    print(f"latency p99        {percentile(latencies, 0.99) * 1000:.1f} ms")
    print(f"latency mean       {statistics.fmean(latencies) * 1000:.1f} ms")
    posts = max(1, len(latencies))
    api_us, postgres_us = api_cpu / posts * 1e6, postgres_cpu / posts * 1e6
    print(f"cpu per post       api {api_us:.0f} µs, PostgreSQL {postgres_us:.0f} µs")
    print(f"cpu count          {os.cpu_count()}")
    print(f"cpu stolen         {steal / elapsed / (os.cpu_count() or 1):.0%} (by the hypervisor, in the run)")
    loop_after = reference_loop_seconds()
    print(f"reference loop     {loop_before:.2f} s before, {loop_after:.2f} s after (lower is faster)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--members", type=int, default=3, help="participants per conversation")
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="rate limiting on (HTTP limits and the posting limit, raised so that no post is refused)",
    )
    parser.add_argument(
        "--no-fsync", action="store_true", help="PostgreSQL without fsync (memory-speed commits)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
