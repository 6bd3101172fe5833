"""Jobs survive worker crashes and run once with several workers (contract 9.2), end to end: a worker killed
with SIGKILL mid-stream has its reply finished by another worker as ``worker lost`` once the lease lapses;
with two workers every job is processed exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from uuid import UUID

import asyncpg
import pytest

from tests.assistant.replies import (
    assistant_replies_to,
    chunk_page,
    delta_text,
    only,
    reply_events,
    script,
    wait_jobs_done,
)
from tests.support.api import Api, remote_api
from tests.support.conversations import create_conversation
from tests.support.messages import events_after, post_root
from tests.support.servers import SuiteServers
from tests.support.sse import open_stream
from tests.support.stack import Stack, running_stack
from threadline_devstack.servers import free_port
from threadline_devstack.services import ServiceProcess

pytestmark = pytest.mark.e2e

LEASE_SECONDS = 2
ENV = {
    "THREADLINE_RATE_LIMIT_ENABLED": "false",
    "THREADLINE_ASSISTANT_LEASE_SECONDS": str(LEASE_SECONDS),
    "THREADLINE_ASSISTANT_CONCURRENCY": "2",
}


@pytest.fixture(scope="module")
def stack(
    database_url: str, servers: SuiteServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with running_stack(database_url, servers.redis_url, tmp_path_factory.mktemp("stack"), ENV) as started:
        yield started


@pytest.fixture
async def api(stack: Stack, pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with remote_api(stack.url("api")) as running:
        yield running


def workers(stack: Stack) -> list[ServiceProcess]:
    return [p for name, p in stack.processes.items() if name.startswith("assistant") and p.exited() is None]


def start_worker(stack: Stack) -> ServiceProcess:
    """One more assistant worker process, stopped with the stack."""
    model = stack.processes["assistant"]
    name = f"assistant-{len(stack.processes)}"
    worker = ServiceProcess(model.spec, free_port(), model.env, log_path=stack.log_dir / f"{name}.log")
    stack.processes[name] = worker
    worker.start()
    worker.wait_ready(60)
    return worker


async def test_a_worker_killed_mid_stream_is_finished_by_another_as_worker_lost(
    stack: Stack, api: Api, pool: asyncpg.Pool
) -> None:
    (victim,) = workers(stack)
    alice = await api.persona("alice")
    conversation = await create_conversation(api, alice)
    trigger = await post_root(api, alice, conversation, script([f"t{n} " for n in range(40)], delay_ms=150))
    async with open_stream(stack.url("streamer"), conversation, alice.token, last_event_id=0) as stream:
        await stream.until("message.delta")
        await stream.until("message.delta")
        assert victim.proc is not None
        victim.proc.kill()  # SIGKILL: no chance to finish anything
        victim.proc.wait(10)
    start_worker(stack)
    async with open_stream(stack.url("streamer"), conversation, alice.token, last_event_id=0) as stream:
        events = await reply_events(stream, timeout=20)

    message_id = events[0].payload["id"]
    text = delta_text(events)
    assert text and text.count("t") < 40
    assert [e.event for e in events][-4:] == ["message.done", "error", "message.updated", "thread.activity"]
    assert only(events, "message.done")["finish_reason"] == "error"
    assert only(events, "error") == {
        "code": "assistant_stream_error",
        "message": "Assistant stream error: worker lost",
        "message_id": message_id,
    }
    updated = only(events, "message.updated")
    assert (updated["content"], updated["status"]) == (
        f"{text}\n\n⚠️ Assistant stream error: worker lost",
        "failed",
    )
    assert "".join(c["content"] for c in await chunk_page(api, alice, message_id)) == text
    (job,) = await wait_jobs_done(pool, 1)
    assert (job["status"], job["finish_reason"], job["assistant_message_id"]) == (
        "done",
        "error",
        UUID(message_id),
    )
    assert len(await assistant_replies_to(pool, trigger)) == 1, "generation is never restarted"


async def test_with_two_workers_every_job_runs_exactly_once(
    stack: Stack, api: Api, pool: asyncpg.Pool
) -> None:
    while len(workers(stack)) < 2:
        start_worker(stack)
    alice, bob = await api.persona("alice"), await api.persona("bob")
    conversations = [await create_conversation(api, alice), await create_conversation(api, bob)]
    posts = [
        (conversation, user)
        for conversation, user in [(conversations[0], alice), (conversations[1], bob)]
        for _ in range(8)
    ]
    triggers = await asyncio.gather(
        *(
            post_root(api, user, conversation, script(["a", "b", "c"], delay_ms=60))
            for conversation, user in posts
        )
    )

    jobs = await wait_jobs_done(pool, len(triggers))
    assert sorted(str(job["trigger_message_id"]) for job in jobs) == sorted(triggers)
    assert {job["finish_reason"] for job in jobs} == {"stop"}
    assert len({job["worker_id"] for job in jobs}) == 2, "both workers took jobs"
    for trigger in triggers:
        (reply,) = await assistant_replies_to(pool, trigger)
        assert (reply["content"], reply["status"]) == ("abc", "complete")
    done_per_message: Counter[str] = Counter()
    created_per_parent: Counter[str] = Counter()
    for conversation in conversations:
        for event in await events_after(pool, conversation):
            payload = event["envelope"]["payload"]
            if event["type"] == "message.done":
                done_per_message[payload["message_id"]] += 1
            if event["type"] == "message.created" and payload["role"] == "assistant":
                created_per_parent[payload["parent_id"]] += 1
    assert sorted(created_per_parent) == sorted(triggers) and set(created_per_parent.values()) == {1}
    assert len(done_per_message) == len(triggers) and set(done_per_message.values()) == {1}
