"""The post's event envelopes are built in the database (``tl_post_message``, db migration 0002), not by the
DTOs: each stored envelope must be exactly what the DTO of its type writes (contract 6.3, 1.1-1.3), and the
message it carries must be the message as the api reads it back."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson
import pytest

from tests.support.api import Api
from tests.support.messages import open_room, post_root, reply, view
from threadline_shared.dto.events import STREAM_EVENT_ADAPTER

AWKWARD = [
    'quotes " and \\ backslashes',
    "lines\nand\ttabs\rand \b\f controls \x01\x1f and DEL \x7f",
    "non-ASCII: é, 中文, emoji 🧵, U+2028 \u2028, U+FEFF \ufeff",
    "  surrounding space, kept as sent  \n",
    "x" * 5000,
    "%s %% {} $1 '' -- format and SQL look-alikes",
]


async def stored_envelopes(pool: asyncpg.Pool, conversation_id: str) -> list[tuple[str, str | None]]:
    rows = await pool.fetch(
        "SELECT envelope, audience_user_id FROM event_log WHERE conversation_id = $1 ORDER BY seq",
        UUID(conversation_id),
    )
    return [
        (row["envelope"], str(row["audience_user_id"]) if row["audience_user_id"] else None) for row in rows
    ]


def as_the_dto_writes_it(envelope: str) -> dict[str, Any]:
    """The envelope parsed by the event adapter and written again by its DTO."""
    parsed: dict[str, Any] = orjson.loads(STREAM_EVENT_ADAPTER.validate_json(envelope).to_json())
    return parsed


async def test_plain_posts_store_the_dtos_bytes(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    before = len(await stored_envelopes(pool, room.id))
    root = await post_root(api, room.bob, room.id, "a plain root")
    await reply(api, room.alice, root, "a plain reply")

    envelopes = (await stored_envelopes(pool, room.id))[before:]

    types = [orjson.loads(envelope)["type"] for envelope, _ in envelopes]
    root_events = ["thread.new", "message.created", "thread.activity", "unread.update", "unread.update"]
    assert types == [*root_events, "message.created", "thread.activity", "unread.update", "unread.update"]
    for envelope, _ in envelopes:
        assert envelope == STREAM_EVENT_ADAPTER.validate_json(envelope).to_json().decode()


@pytest.mark.parametrize("content", AWKWARD, ids=range(len(AWKWARD)))
async def test_awkward_content_is_carried_exactly(api: Api, pool: asyncpg.Pool, content: str) -> None:
    room = await open_room(api)
    before = len(await stored_envelopes(pool, room.id))
    root = await post_root(api, room.bob, room.id, content)
    child = await reply(api, room.alice, root, content)

    envelopes = (await stored_envelopes(pool, room.id))[before:]

    for envelope, _ in envelopes:
        assert orjson.loads(envelope) == as_the_dto_writes_it(envelope)
    created = [
        orjson.loads(e)["payload"] for e, _ in envelopes if orjson.loads(e)["type"] == "message.created"
    ]
    assert created == [await view(api, room.alice, root, root), await view(api, room.alice, root, child)]
    (thread_new,) = [
        orjson.loads(e)["payload"] for e, _ in envelopes if orjson.loads(e)["type"] == "thread.new"
    ]
    listed = (await api.get(f"/api/conversations/{room.id}/threads", room.alice)).json()["threads"]
    assert thread_new["summary"]["root_excerpt"] == listed[0]["root_excerpt"] == content.strip()[:240]


async def test_the_thread_summary_counts_the_participants_and_the_author_reads_nothing_new(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    before = len(await stored_envelopes(pool, room.id))
    root = await post_root(api, room.alice, room.id, "root")

    envelopes = [
        (orjson.loads(e), audience) for e, audience in (await stored_envelopes(pool, room.id))[before:]
    ]

    summary = envelopes[0][0]["payload"]["summary"]
    assert summary["root_id"] == root and summary["root_author"] == str(room.alice.id)
    assert summary["message_count"] == 1 and summary["participant_count"] == 3
    assert summary["created_at"] == summary["last_activity_at"]
    unread = {audience: envelope["payload"]["unread"] for envelope, audience in envelopes[3:]}
    assert unread == {str(room.bob.id): 1, str(room.carol.id): 1}
