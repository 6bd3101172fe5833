"""When a post enqueues an assistant job (contract 5.3, 9.1): a user-role root or reply in a conversation with
``assistant_replies``, in the message's own transaction; never for other roles, group defaults or depth 64."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from tests.support.api import Api
from tests.support.messages import insert_chain, open_room, post_root, reply


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
