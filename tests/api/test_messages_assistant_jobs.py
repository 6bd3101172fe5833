"""When a post enqueues an assistant job (contract 5.3, 9.1): a user-role root or reply in a conversation with
``assistant_replies``, in the message's own transaction; never for other roles, group defaults or depth 64."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from tests.support.api import Api
from tests.support.messages import insert_chain, open_room, post_root, reply
from threadline_api.assistant.jobs import _TOUCH_THREAD


async def jobs(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        """
        SELECT j.trigger_message_id, j.status, j.conversation_id, j.assistant_message_id,
               j.created_at = m.created_at AS same_transaction
        FROM assistant_jobs j JOIN messages m ON m.id = j.trigger_message_id
        ORDER BY j.created_at, j.trigger_message_id
        """
    )


async def test_a_user_post_enqueues_one_job_in_its_transaction(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api, assistant_replies=True)

    root = await post_root(api, room.bob, room.id)
    child = await reply(api, room.alice, root, role="user")

    assert [tuple(job) for job in await jobs(pool)] == [
        (UUID(root), "queued", UUID(room.id), None, True),
        (UUID(child), "queued", UUID(room.id), None, True),
    ]


async def test_other_roles_never_enqueue_a_job(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api, assistant_replies=True)

    root = await post_root(api, room.bob, room.id, role="system")
    for role in ("assistant", "tool"):
        await reply(api, room.bob, root, role=role)
        await post_root(api, room.bob, room.id, role=role)

    assert await jobs(pool) == []


async def test_group_conversations_do_not_enqueue_jobs_by_default(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api, is_group=True, assistant_replies=None)

    await reply(api, room.bob, await post_root(api, room.bob, room.id))

    assert await jobs(pool) == []


async def test_conversations_without_assistant_replies_enqueue_nothing(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api, assistant_replies=False)

    await reply(api, room.bob, await post_root(api, room.bob, room.id))

    assert await jobs(pool) == []


async def test_a_direct_conversation_enqueues_jobs_by_default(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api, assistant_replies=None)

    root = await post_root(api, room.bob, room.id)

    assert [job["trigger_message_id"] for job in await jobs(pool)] == [UUID(root)]


async def test_no_job_at_depth_64(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api, assistant_replies=True)
    chain = await insert_chain(pool, room.id, room.bob.id, 62)

    at_63 = await reply(api, room.bob, str(chain[-1]))
    at_64 = await reply(api, room.bob, at_63)

    assert [job["trigger_message_id"] for job in await jobs(pool)] == [UUID(at_63)]
    assert await pool.fetchval("SELECT depth FROM messages WHERE id = $1", UUID(at_64)) == 64


async def test_starting_a_reply_takes_the_thread_before_the_conversation(
    api: Api, pool: asyncpg.Pool
) -> None:
    """The order every post takes them in (db migrations 0002-0003); the other order closed a lock cycle with
    a post that held the thread and waited for the conversation."""
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)

    async with pool.acquire() as holder:
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT FROM threads WHERE root_id = $1 FOR UPDATE", UUID(root))
        async with pool.acquire() as starter, starter.transaction():
            touching = asyncio.create_task(
                starter.execute(_TOUCH_THREAD, UUID(room.id), UUID(root), datetime.now(UTC))
            )
            async with asyncio.timeout(10):  # until it waits for the thread
                while not await pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))",
                    holder.get_server_pid(),
                ):
                    await asyncio.sleep(0.01)
            async with pool.acquire() as other, other.transaction():  # the conversation is still free
                await other.execute(
                    "SELECT FROM conversations WHERE id = $1 FOR UPDATE NOWAIT", UUID(room.id)
                )
            await held.commit()
            await touching
