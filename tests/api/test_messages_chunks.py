"""Assistant output chunks (contract 1.6, 5.7): only assistant messages have them, by ``idx`` from ``from``,
hidden while deleted."""

from __future__ import annotations

import asyncpg

from tests.support.api import Api
from tests.support.messages import insert_chunks, insert_thread, open_room, post_root
from tests.support.problems import assert_problem


async def test_chunks_come_by_idx_from_the_requested_one(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    (message,) = await insert_thread(pool, room.id, None, [None], role="assistant")
    await insert_chunks(pool, message, ["Hel", "lo", " wor", "ld"])

    everything = await api.get(f"/api/messages/{message}/chunks", room.carol)
    middle = await api.get(f"/api/messages/{message}/chunks", room.carol, params={"from": 1, "limit": 2})
    beyond = await api.get(f"/api/messages/{message}/chunks", room.carol, params={"from": 9})

    assert everything.status_code == 200
    chunks = everything.json()
    assert "".join(chunk["content"] for chunk in chunks) == "Hello world"
    assert [(c["message_id"], c["idx"]) for c in chunks] == [(str(message), idx) for idx in range(4)]
    assert all(c["created_at"].endswith("Z") for c in chunks)
    assert [c["idx"] for c in middle.json()] == [1, 2]
    assert beyond.json() == []


async def test_messages_not_written_by_the_assistant_have_no_chunks(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id, role="assistant")
    (user_message,) = await insert_thread(pool, room.id, room.bob.id, [None])
    await insert_chunks(pool, user_message, ["stray"])

    assert (await api.get(f"/api/messages/{root}/chunks", room.bob)).json() == []
    assert (await api.get(f"/api/messages/{user_message}/chunks", room.bob)).json() == []


async def test_a_deleted_assistant_message_hides_its_chunks(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    (message,) = await insert_thread(pool, room.id, None, [None], role="assistant")
    await insert_chunks(pool, message, ["hidden"])
    assert (await api.post(f"/api/messages/{message}/delete", room.alice)).status_code == 204

    hidden = (await api.get(f"/api/messages/{message}/chunks", room.bob)).json()
    assert (await api.post(f"/api/messages/{message}/restore", room.alice)).status_code == 204
    shown = (await api.get(f"/api/messages/{message}/chunks", room.bob)).json()

    assert hidden == [] and [chunk["content"] for chunk in shown] == ["hidden"]


async def test_the_limit_defaults_to_500_and_is_clamped_to_1000(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    (message,) = await insert_thread(pool, room.id, None, [None], role="assistant")
    await insert_chunks(pool, message, ["x"] * 1001)

    default = (await api.get(f"/api/messages/{message}/chunks", room.bob)).json()
    clamped = (await api.get(f"/api/messages/{message}/chunks", room.bob, params={"limit": 5000})).json()
    rest = (await api.get(f"/api/messages/{message}/chunks", room.bob, params={"from": 1000})).json()

    assert [c["idx"] for c in default] == list(range(500))
    assert [c["idx"] for c in clamped] == list(range(1000))
    assert [c["idx"] for c in rest] == [1000]


async def test_from_and_limit_must_be_integers_in_range(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    (message,) = await insert_thread(pool, room.id, None, [None], role="assistant")

    for params, field in (
        ({"from": "-1"}, "from"),
        ({"from": "one"}, "from"),
        ({"from": "1.5"}, "from"),
        ({"from": ""}, "from"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-2"}, "limit"),
        ({"limit": "many"}, "limit"),
    ):
        response = await api.get(f"/api/messages/{message}/chunks", room.bob, params=params)
        problem = assert_problem(response, 400, "invalid_request")
        assert [error["field"] for error in problem["details"]["errors"]] == [field], params
    assert (
        await api.get(f"/api/messages/{message}/chunks", room.bob, params={"from": "0"})
    ).status_code == 200


async def test_parameters_are_checked_before_the_message_and_the_membership(api: Api) -> None:
    room = await open_room(api)
    unknown = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"

    response = await api.get(f"/api/messages/{unknown}/chunks", room.dave, params={"from": "-1"})

    assert_problem(response, 400, "invalid_request")
