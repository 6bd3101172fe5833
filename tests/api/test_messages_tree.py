"""Tree paging (contract 1.2, 1.6, 5.4): a thread comes back as a pre-order depth-first walk with siblings in
creation order, page by page after ``cursor_path``; ``next_cursor`` only when more follow."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support.api import Api, Persona
from tests.support.messages import (
    insert_thread,
    open_room,
    post_root,
    reply,
    tree,
    unlimited_api,
)
from tests.support.problems import assert_problem
from threadline_shared.ids import path_label, uuid7

THREAD_SIZE, PAGE = 500, 37


@pytest.fixture
async def api(pool: asyncpg.Pool, redis: Redis, database_url: str, redis_url: str) -> AsyncIterator[Api]:
    """These tests post hundreds of messages: the api starts with the posting limit raised."""
    async with unlimited_api(pool, database_url, redis_url) as running:
        yield running


def depth_first(root: UUID, parent_of: dict[UUID, UUID | None]) -> list[UUID]:
    """Pre-order walk from ``root``, each message's children in id (= creation) order."""
    children: dict[UUID, list[UUID]] = {message: [] for message in parent_of}
    for message, parent in parent_of.items():
        if parent is not None:
            children[parent].append(message)
    order: list[UUID] = []
    stack = [root]
    while stack:
        message = stack.pop()
        order.append(message)
        stack.extend(sorted(children[message], reverse=True))
    return order


async def all_pages(api: Api, user: Persona, root_id: str, limit: int) -> list[dict[str, Any]]:
    """Every page, following ``next_cursor`` until it is absent."""
    pages = [await tree(api, user, root_id, limit=limit)]
    while "next_cursor" in pages[-1]:
        assert pages[-1]["next_cursor"] == pages[-1]["messages"][-1]["path"]
        pages.append(await tree(api, user, root_id, limit=limit, cursor_path=pages[-1]["next_cursor"]))
    return pages


async def test_a_random_thread_of_500_pages_back_depth_first_with_consistent_paths(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    rng = random.Random(20250308)
    root = UUID(await post_root(api, room.alice, room.id))
    parent_of: dict[UUID, UUID | None] = {root: None}
    created = [root]
    for _ in range(THREAD_SIZE - 1):
        parent = rng.choice(created)
        author = rng.choice((room.alice, room.bob))
        message = UUID(await reply(api, author, str(parent)))
        parent_of[message] = parent
        created.append(message)

    pages = await all_pages(api, room.carol, str(root), PAGE)

    assert [len(page["messages"]) for page in pages] == [PAGE] * 13 + [THREAD_SIZE - 13 * PAGE]
    assert all(page["root_id"] == str(root) for page in pages)
    messages = [message for page in pages for message in page["messages"]]
    assert [UUID(message["id"]) for message in messages] == depth_first(root, parent_of)
    by_id = {UUID(message["id"]): message for message in messages}
    for message_id, message in by_id.items():
        parent = parent_of[message_id]
        assert message["root_id"] == str(root)
        if parent is None:
            assert "parent_id" not in message
            assert message["path"] == path_label(message_id)
        else:
            assert message["parent_id"] == str(parent)
            assert message["path"] == f"{by_id[parent]['path']}.{path_label(message_id)}"
        assert (
            message["depth"]
            == len(message["path"].split("."))
            == (by_id[parent]["depth"] + 1 if parent else 1)
        )


async def test_next_cursor_is_absent_when_the_page_ends_the_thread(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root, *_ = await insert_thread(pool, room.id, room.bob.id, [None, 0, 0])

    whole = await tree(api, room.bob, str(root), limit=3)
    first = await tree(api, room.bob, str(root), limit=2)
    rest = await tree(api, room.bob, str(root), limit=2, cursor_path=first["next_cursor"])

    assert "next_cursor" not in whole and len(whole["messages"]) == 3
    assert first["next_cursor"] == first["messages"][-1]["path"]
    assert [m["id"] for m in first["messages"] + rest["messages"]] == [m["id"] for m in whole["messages"]]
    assert "next_cursor" not in rest


async def test_a_cursor_need_not_be_the_path_of_an_existing_message(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root, first, second = await insert_thread(pool, room.id, room.bob.id, [None, 0, 0])
    below_first = f"{path_label(root)}.{path_label(first)}.m{'0' * 32}"  # after first, before second

    page = await tree(api, room.bob, str(root), cursor_path=below_first)

    assert [m["id"] for m in page["messages"]] == [str(second)]


async def test_a_cursor_before_or_after_the_whole_thread_gives_all_or_nothing(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    root, reply_id = await insert_thread(pool, room.id, room.bob.id, [None, 0])

    before = await tree(api, room.bob, str(root), cursor_path=path_label(uuid7()))
    after = await tree(api, room.bob, str(root), cursor_path="m" + "0" * 32)

    assert before["messages"] == []
    assert [m["id"] for m in after["messages"]] == [str(root), str(reply_id)]


async def test_a_later_reply_shows_up_only_if_it_sorts_after_the_cursor(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    early = await reply(api, room.bob, root)
    late = await reply(api, room.bob, root)
    first = await tree(api, room.bob, root, limit=3)  # root, early, late

    under_early = await reply(api, room.alice, early)  # sorts before the cursor: not on a later page
    under_late = await reply(api, room.alice, late)  # sorts after it
    rest = await tree(api, room.bob, root, cursor_path=first["messages"][-1]["path"])

    assert [m["id"] for m in first["messages"]] == [root, early, late] and "next_cursor" not in first
    assert [m["id"] for m in rest["messages"]] == [under_late]
    assert [m["id"] for m in (await tree(api, room.bob, root))["messages"]] == [
        root,
        early,
        under_early,
        late,
        under_late,
    ]


async def test_deleted_messages_keep_their_place_and_their_replies(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    middle = await reply(api, room.bob, root, "going away")
    below = await reply(api, room.alice, middle, "still here")
    assert (await api.post(f"/api/messages/{middle}/delete", room.bob)).status_code == 204

    messages = (await tree(api, room.carol, root))["messages"]

    assert [m["id"] for m in messages] == [root, middle, below]
    assert messages[1]["content"] == "" and "deleted_at" in messages[1]
    assert messages[2]["content"] == "still here" and "deleted_at" not in messages[2]


async def test_assistant_messages_have_no_author_and_show_their_status(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    (streaming,) = await insert_thread(pool, room.id, None, [None], role="assistant", status="streaming")

    assistant = (await tree(api, room.bob, str(streaming)))["messages"][0]
    user = (await tree(api, room.bob, root))["messages"][0]

    assert "author_user_id" not in assistant and assistant["status"] == "streaming"
    assert user["author_user_id"] == str(room.bob.id) and user["status"] == "complete"


async def test_the_limit_defaults_to_200_and_is_clamped_to_1000(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root, *_ = await insert_thread(pool, room.id, room.bob.id, [None] + [0] * 1001)

    default = await tree(api, room.bob, str(root))
    clamped = await tree(api, room.bob, str(root), limit=5000)
    last = await tree(api, room.bob, str(root), limit=1000, cursor_path=clamped["next_cursor"])

    assert len(default["messages"]) == 200 and "next_cursor" in default
    assert len(clamped["messages"]) == 1000 and "next_cursor" in clamped
    assert len(last["messages"]) == 2 and "next_cursor" not in last


async def test_a_cursor_path_outside_the_grammar_is_a_bad_request(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    label = path_label(UUID(root))

    for cursor in (
        "",
        "abc",
        label.upper(),
        label[:-1],
        label + "0",
        label + ".",
        f"{label}..{label}",
        str(UUID(root)),
        ".".join([label] * 65),
        label + "\n",
    ):
        response = await api.get(f"/api/threads/{root}/tree", room.bob, params={"cursor_path": cursor})
        problem = assert_problem(response, 400, "invalid_request")
        assert [error["field"] for error in problem["details"]["errors"]] == ["cursor_path"], cursor
    assert (await tree(api, room.bob, root, cursor_path=".".join([label] * 64)))["messages"] == []


async def test_a_limit_that_is_not_a_positive_integer_is_a_bad_request(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)

    for limit in ("0", "-1", "abc", "2.5", "", " 5", "1e3", "+5"):
        response = await api.get(f"/api/threads/{root}/tree", room.bob, params={"limit": limit})
        problem = assert_problem(response, 400, "invalid_request")
        assert [error["field"] for error in problem["details"]["errors"]] == ["limit"], limit


async def test_query_parameters_are_checked_before_the_root_and_the_membership(api: Api) -> None:
    room = await open_room(api)
    unknown = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"

    for params in ({"limit": "0"}, {"cursor_path": "nope"}):
        response = await api.get(f"/api/threads/{unknown}/tree", room.dave, params=params)
        assert_problem(response, 400, "invalid_request")
