"""Edit, delete (a tombstone) and restore (contract 5.2, 5.6): what changes, who may (4.5), conflicts, no-ops,
and the order of the checks."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from tests.support.api import Api, Persona
from tests.support.conversations import add_participant
from tests.support.messages import insert_thread, open_room, post_root, reply, view
from tests.support.problems import assert_problem

FORBIDDEN, CONFLICT = "RGP.RBAC.FORBIDDEN", "RGP.CONFLICT"


async def stored(pool: asyncpg.Pool, message_id: str | UUID) -> dict[str, Any]:
    row = await pool.fetchrow(
        """
        SELECT content, edited_at, edited_by, edit_reason, deleted_at, deleted_by, delete_reason
        FROM messages WHERE id = $1
        """,
        UUID(str(message_id)),
    )
    assert row is not None
    return dict(row)


async def act(api: Api, user: Persona, message_id: str | UUID, action: str, **body: Any) -> int:
    response = await api.post(f"/api/messages/{message_id}/{action}", user, json=body or None)
    return response.status_code


async def test_an_author_edits_their_message(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id, "first")

    assert await act(api, room.bob, root, "edit", content="  second ", reason="typo") == 204

    message = await view(api, room.carol, root, root)
    assert message["content"] == "  second " and "edited_at" in message
    row = await stored(pool, root)
    assert (row["edited_by"], row["edit_reason"]) == (room.bob.id, "typo")


async def test_the_same_content_still_counts_as_an_edit(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id, "same")
    assert await act(api, room.bob, root, "edit", content="same") == 204
    first_edit = (await stored(pool, root))["edited_at"]

    assert await act(api, room.bob, root, "edit", content="same") == 204

    assert first_edit is not None and (await stored(pool, root))["edited_at"] > first_edit


async def test_a_deleted_message_shows_empty_content_but_keeps_it_stored(
    api: Api, pool: asyncpg.Pool
) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id, "regret")

    assert await act(api, room.bob, root, "delete", reason="oops") == 204

    message = await view(api, room.bob, root, root)
    assert message["content"] == "" and "deleted_at" in message
    row = await stored(pool, root)
    assert (row["content"], row["deleted_by"], row["delete_reason"]) == ("regret", room.bob.id, "oops")


async def test_a_restored_message_shows_its_content_again(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id, "back")
    assert await act(api, room.bob, root, "delete", reason="oops") == 204

    assert await act(api, room.alice, root, "restore") == 204

    message = await view(api, room.bob, root, root)
    assert message["content"] == "back" and "deleted_at" not in message
    row = await stored(pool, root)
    assert (row["deleted_at"], row["deleted_by"], row["delete_reason"]) == (None, None, None)


async def test_deleting_a_deleted_message_changes_nothing(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    assert await act(api, room.bob, root, "delete", reason="first") == 204
    before = await stored(pool, root)

    assert await act(api, room.alice, root, "delete", reason="second") == 204

    assert await stored(pool, root) == before


async def test_restoring_a_live_message_changes_nothing(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    before = await stored(pool, root)

    assert await act(api, room.alice, root, "restore") == 204

    assert await stored(pool, root) == before


async def test_a_deleted_message_cannot_be_edited(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id, "gone")
    assert await act(api, room.bob, root, "delete") == 204

    response = await api.post(f"/api/messages/{root}/edit", room.bob, json={"content": "revived"})

    assert_problem(response, 409, CONFLICT)
    assert (await stored(pool, root))["content"] == "gone"


async def test_a_streaming_message_cannot_be_edited_or_deleted(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    (streaming,) = await insert_thread(pool, room.id, None, [None], role="assistant", status="streaming")

    edit = await api.post(f"/api/messages/{streaming}/edit", room.alice, json={"content": "x"})
    delete = await api.post(f"/api/messages/{streaming}/delete", room.alice)

    assert_problem(edit, 409, CONFLICT)
    assert_problem(delete, 409, CONFLICT)
    row = await stored(pool, streaming)
    assert row["deleted_at"] is None and row["edited_at"] is None


async def test_members_change_only_their_own_messages(api: Api) -> None:
    room = await open_room(api)
    dave = room.dave
    await add_participant(api, room.alice, room.id, dave)
    daves = await post_root(api, dave, room.id)

    for action, body in (("edit", {"content": "mine now"}), ("delete", {})):
        assert_problem(await api.post(f"/api/messages/{daves}/{action}", room.bob, json=body), 403, FORBIDDEN)
    assert await act(api, dave, daves, "edit", content="still mine") == 204
    assert await act(api, dave, daves, "delete") == 204


async def test_only_owners_and_admins_change_messages_without_an_author(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    erin = await api.persona("erin")
    await add_participant(api, room.alice, room.id, erin, "admin")
    (assistant,) = await insert_thread(pool, room.id, None, [None], role="assistant")

    for action, body in (("edit", {"content": "x"}), ("delete", {}), ("restore", {})):
        assert_problem(
            await api.post(f"/api/messages/{assistant}/{action}", room.bob, json=body), 403, FORBIDDEN
        )
    assert await act(api, erin, assistant, "edit", content="admin edit") == 204
    assert await act(api, room.alice, assistant, "delete") == 204
    assert await act(api, erin, assistant, "restore") == 204


async def test_owners_and_admins_change_other_peoples_messages(api: Api) -> None:
    room = await open_room(api)
    erin = await api.persona("erin")
    await add_participant(api, room.alice, room.id, erin, "admin")
    root = await post_root(api, room.bob, room.id)

    assert await act(api, erin, root, "edit", content="moderated") == 204
    assert await act(api, room.alice, root, "edit", content="moderated again") == 204
    assert await act(api, erin, root, "delete") == 204
    assert await act(api, room.alice, root, "restore") == 204
    assert await act(api, room.alice, root, "delete") == 204
    assert await act(api, erin, root, "restore") == 204


async def test_members_cannot_restore_even_their_own_messages(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    assert await act(api, room.bob, root, "delete") == 204

    assert_problem(await api.post(f"/api/messages/{root}/restore", room.bob), 403, FORBIDDEN)


async def test_a_demoted_author_cannot_change_their_messages(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    await add_participant(api, room.alice, room.id, room.bob, "viewer")

    for action, body in (("edit", {"content": "x"}), ("delete", {})):
        assert_problem(await api.post(f"/api/messages/{root}/{action}", room.bob, json=body), 403, FORBIDDEN)


async def test_edit_and_delete_bodies_are_validated(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)

    for action, body in (
        ("edit", {}),
        ("edit", {"content": "   "}),
        ("edit", {"content": "x" * 32_001}),
        ("edit", {"content": 5}),
        ("edit", {"content": "ok", "reason": "r" * 513}),
        ("delete", {"reason": "r" * 513}),
        ("delete", {"reason": 5}),
        ("edit", {"content": "nul \u0000"}),
        ("edit", {"content": "ok", "reason": "\u0000"}),
        ("delete", {"reason": "\u0000"}),
    ):
        response = await api.post(f"/api/messages/{root}/{action}", room.bob, json=body)
        assert_problem(response, 422, "validation_failed")
    assert await act(api, room.bob, root, "edit", content="y" * 32_000, reason="r" * 512) == 204
    assert await act(api, room.bob, root, "delete", reason="r" * 512) == 204


async def test_the_body_is_checked_before_the_message_exists(api: Api) -> None:
    room = await open_room(api)
    unknown = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"

    edit = await api.post(f"/api/messages/{unknown}/edit", room.dave, json={"content": ""})
    delete = await api.post(f"/api/messages/{unknown}/delete", room.dave, json={"reason": 1})

    assert_problem(edit, 422, "validation_failed")
    assert_problem(delete, 422, "validation_failed")


async def test_permission_is_checked_before_conflicts(api: Api, pool: asyncpg.Pool) -> None:
    room = await open_room(api)
    root = await post_root(api, room.alice, room.id)
    assert await act(api, room.alice, root, "delete") == 204
    (streaming,) = await insert_thread(pool, room.id, None, [None], role="assistant", status="streaming")

    deleted_edit = await api.post(f"/api/messages/{root}/edit", room.bob, json={"content": "x"})
    streaming_delete = await api.post(f"/api/messages/{streaming}/delete", room.bob)

    assert_problem(deleted_edit, 403, FORBIDDEN)
    assert_problem(streaming_delete, 403, FORBIDDEN)


async def test_replies_of_a_deleted_message_are_unaffected(api: Api) -> None:
    room = await open_room(api)
    root = await post_root(api, room.bob, room.id)
    child = await reply(api, room.alice, root, "answer")

    assert await act(api, room.bob, root, "delete") == 204

    assert (await view(api, room.bob, root, child))["content"] == "answer"
