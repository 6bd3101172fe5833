"""Response DTOs on the wire (contract 1.1-1.3 and the DTO tables of 3.1, 4.1, 5.1, 7.4, 8.8, 2.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError

import threadline_shared.dto as dto
from threadline_shared.dto import (
    MESSAGE_CHUNK_LIST_ADAPTER,
    RATE_LIMIT_ASSIGNMENT_LIST_ADAPTER,
    RATE_LIMIT_PROFILE_LIST_ADAPTER,
    AcceptInviteResponse,
    AuthenticatedUser,
    CancelResponse,
    ConversationCreateResponse,
    ConversationListResponse,
    ConversationSummary,
    ConversationView,
    CreateInviteResponse,
    GcraParams,
    HealthResponse,
    InviteListResponse,
    InviteView,
    LoginResponse,
    LogoutResponse,
    MarkThreadReadResponse,
    MeResponse,
    MessageChunk,
    MessageView,
    Participant,
    PostRootMessageResponse,
    PresenceSnapshotResponse,
    PresenceUpdate,
    RateLimitAssignment,
    RateLimitProfile,
    ReadinessCheck,
    ReadyResponse,
    ReplyMessageResponse,
    SessionSummary,
    SetupStatus,
    ThreadListResponse,
    ThreadSummary,
    ThreadTreeResponse,
    TypingUpdate,
    UnreadSummaryResponse,
    UnreadThread,
    UserListResponse,
    UserPublic,
    WireModel,
)
from threadline_shared.dto import events as events_module

CONVERSATION = "7d9f1c2e-4b3a-4f6e-9a1b-2c3d4e5f6a7b"
ROOT = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"
REPLY = "0193a5b2-7d05-7a11-8c3e-5f6a7b8c9d0e"
ROOT_PATH = "m0193a5b27c1e7d3a9f213b4c5d6e7f80"
REPLY_PATH = f"{ROOT_PATH}.m0193a5b27d057a118c3e5f6a7b8c9d0e"
ALICE = "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
BOB = "5b6c7d8e-9f00-4a1b-8c2d-3e4f5a6b7c8d"
SESSION = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
INVITE = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
PROFILE = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
ASSIGNMENT = "4d5e6f7a-8b9c-4d0e-8f1a-2b3c4d5e6f7a"
T0 = "2025-03-08T14:30:00.123456Z"
T1 = "2025-03-08T14:31:02.000000Z"
T2 = "2025-03-08T22:30:00.123456Z"
T3 = "2025-03-15T14:30:00.123456Z"

ALICE_USER = {
    "id": ALICE,
    "email": "alice@example.com",
    "username": "alice",
    "display_name": "Alice Liddell",
    "roles": ["admin", "member"],
}
SESSION_SUMMARY = {"id": SESSION, "issued_at": T0, "expires_at": T2, "absolute_expires_at": T3}
ROOT_MESSAGE = {
    "id": ROOT,
    "root_id": ROOT,
    "conversation_id": CONVERSATION,
    "author_user_id": ALICE,
    "role": "user",
    "content": "hi",
    "path": ROOT_PATH,
    "depth": 1,
    "created_at": T0,
    "edited_at": T1,
    "status": "complete",
}
STREAMING_REPLY = {
    "id": REPLY,
    "root_id": ROOT,
    "parent_id": ROOT,
    "conversation_id": CONVERSATION,
    "role": "assistant",
    "content": "",
    "path": REPLY_PATH,
    "depth": 2,
    "created_at": T1,
    "status": "streaming",
}
DELETED_REPLY = {
    "id": REPLY,
    "root_id": ROOT,
    "parent_id": ROOT,
    "conversation_id": CONVERSATION,
    "author_user_id": BOB,
    "role": "user",
    "content": "",
    "path": REPLY_PATH,
    "depth": 2,
    "created_at": T1,
    "deleted_at": T2,
    "status": "complete",
}
THREAD_SUMMARY = {
    "root_id": ROOT,
    "root_excerpt": "hi",
    "root_author": ALICE,
    "created_at": T0,
    "last_activity_at": T1,
    "message_count": 2,
    "participant_count": 3,
}
PARTICIPANT = {
    "user_id": ALICE,
    "username": "alice",
    "display_name": "Alice",
    "role": "owner",
    "joined_at": T0,
}
ACCEPTED_INVITE = {
    "id": INVITE,
    "token": "x" * 43,
    "email": "carol@example.com",
    "role": "viewer",
    "status": "accepted",
    "invited_by": ALICE,
    "created_at": T0,
    "expires_at": T2,
    "accepted_by": BOB,
    "accepted_at": T1,
}
ACTIVE_INVITE = {key: value for key, value in ACCEPTED_INVITE.items() if not key.startswith("accepted")}
PROFILE_ROW = {
    "id": PROFILE,
    "name": "conversation.post",
    "algorithm": "gcra",
    "params": {"requests_per_second": 5, "burst": 10},
    "description": "Default conversation posting limits",
    "created_at": T0,
    "updated_at": T1,
}
ASSIGNMENT_ROW = {
    "id": ASSIGNMENT,
    "profile_id": PROFILE,
    "profile_name": "conversation.post",
    "method": "POST",
    "path_pattern": "/api/threads/{conversation_id}/root",
    "created_at": T0,
    "updated_at": T0,
}
TYPING = {"conversation_id": CONVERSATION, "root_id": ROOT, "user_id": BOB, "expires_at": T1}

# Every example is written in the field order of its contract table.
RESPONSE_EXAMPLES: list[tuple[type[WireModel], dict[str, Any]]] = [
    (AuthenticatedUser, ALICE_USER),
    (UserPublic, {"id": BOB, "username": "bob"}),
    (SessionSummary, SESSION_SUMMARY),
    (
        LoginResponse,
        {"user": ALICE_USER, "session": SESSION_SUMMARY, "csrf_token": "c" * 22, "session_token": "s" * 43},
    ),
    (MeResponse, {"user": ALICE_USER, "session": SESSION_SUMMARY}),
    (SetupStatus, {"is_setup": True}),
    (LogoutResponse, {"ok": True}),
    (UserListResponse, {"users": [{"id": ALICE, "username": "alice", "display_name": "Alice"}]}),
    (ConversationCreateResponse, {"conversation_id": CONVERSATION}),
    (
        ConversationSummary,
        {
            "id": CONVERSATION,
            "title": "Weekly sync",
            "is_group": True,
            "role": "member",
            "created_at": T0,
            "last_activity_at": T1,
            "unread_total": 4,
        },
    ),
    (ConversationListResponse, {"conversations": []}),
    (Participant, PARTICIPANT),
    (
        ConversationView,
        {
            "id": CONVERSATION,
            "title": "Weekly sync",
            "is_group": False,
            "assistant_replies": True,
            "created_by": ALICE,
            "created_at": T0,
            "last_activity_at": T0,
            "role": "owner",
            "unread_total": 0,
            "participants": [
                PARTICIPANT,
                {"user_id": BOB, "username": "bob", "role": "viewer", "joined_at": T1},
            ],
        },
    ),
    (CreateInviteResponse, {"token": "x" * 43, "expires_at": T2}),
    (InviteView, ACCEPTED_INVITE),
    (
        InviteListResponse,
        {"invites": [ACTIVE_INVITE, {**ACTIVE_INVITE, "status": "revoked", "revoked_at": T1}]},
    ),
    (AcceptInviteResponse, {"conversation_id": CONVERSATION, "role": "viewer"}),
    (MessageView, ROOT_MESSAGE),
    (
        PostRootMessageResponse,
        {"message_id": ROOT, "root_id": ROOT, "conversation_id": CONVERSATION, "depth": 1},
    ),
    (
        ReplyMessageResponse,
        {
            "message_id": REPLY,
            "root_id": ROOT,
            "conversation_id": CONVERSATION,
            "parent_id": ROOT,
            "depth": 2,
        },
    ),
    (
        ThreadTreeResponse,
        {"root_id": ROOT, "messages": [ROOT_MESSAGE, DELETED_REPLY], "next_cursor": REPLY_PATH},
    ),
    (ThreadListResponse, {"threads": [THREAD_SUMMARY], "next_after": "opaque-cursor"}),
    (ThreadSummary, THREAD_SUMMARY),
    (MessageChunk, {"message_id": REPLY, "idx": 0, "content": "Hello", "created_at": T1}),
    (CancelResponse, {"message_id": REPLY, "status": "not_tracked"}),
    (MarkThreadReadResponse, {"root_id": ROOT, "unread": 0}),
    (UnreadThread, {"root_id": ROOT, "unread": 3}),
    (UnreadSummaryResponse, {"threads": [{"root_id": ROOT, "unread": 3}]}),
    (PresenceUpdate, {"user_id": ALICE, "status": "away", "last_seen_at": T0}),
    (TypingUpdate, TYPING),
    (
        PresenceSnapshotResponse,
        {"participants": [{"user_id": ALICE, "status": "online", "last_seen_at": T0}], "typing": [TYPING]},
    ),
    (GcraParams, {"requests_per_second": 0.5, "burst": 1}),
    (RateLimitProfile, PROFILE_ROW),
    (RateLimitAssignment, ASSIGNMENT_ROW),
    (HealthResponse, {"status": "ok"}),
    (ReadyResponse, {"ready": True}),
    (ReadyResponse, {"ready": False, "missing": ["database", "migrations"]}),
]


def _example_id(example: tuple[type[WireModel], dict[str, Any]]) -> str:
    return example[0].__name__


def _classes_in(value: object) -> set[type[BaseModel]]:
    """Every model class found in a validated model tree."""
    if isinstance(value, BaseModel):
        found: set[type[BaseModel]] = {type(value)}
        for name in type(value).model_fields:
            found |= _classes_in(getattr(value, name))
        return found
    if isinstance(value, list):
        return set().union(*(_classes_in(item) for item in value)) if value else set()
    return set()


@pytest.mark.parametrize(("model", "wire"), RESPONSE_EXAMPLES, ids=map(_example_id, RESPONSE_EXAMPLES))
def test_response_round_trips_to_the_same_dict(model: type[WireModel], wire: dict[str, Any]) -> None:
    assert model.model_validate(wire).to_wire() == wire


@pytest.mark.parametrize(("model", "wire"), RESPONSE_EXAMPLES, ids=map(_example_id, RESPONSE_EXAMPLES))
def test_response_json_keeps_the_contract_field_order(model: type[WireModel], wire: dict[str, Any]) -> None:
    encoded = orjson.dumps(wire)
    assert model.model_validate_json(encoded).to_json() == encoded


def test_every_exported_response_model_has_an_example() -> None:
    covered = set().union(*(_classes_in(model.model_validate(wire)) for model, wire in RESPONSE_EXAMPLES))
    exported = {
        value
        for value in vars(dto).values()
        if isinstance(value, type) and issubclass(value, WireModel) and value is not WireModel
    }
    event_models = {value for value in exported if value.__module__ == events_module.__name__}
    assert exported - event_models - covered == set()


NULL_OMISSION_CASES: list[tuple[type[WireModel], dict[str, Any], set[str]]] = [
    (MessageView, {**ROOT_MESSAGE, "parent_id": None, "edited_at": None, "deleted_at": None}, {"parent_id"}),
    (MessageView, {**STREAMING_REPLY, "author_user_id": None}, {"author_user_id"}),
    (UserPublic, {"id": BOB, "username": "bob", "display_name": None}, {"display_name"}),
    (AuthenticatedUser, {**ALICE_USER, "display_name": None}, {"display_name"}),
    (Participant, {**PARTICIPANT, "display_name": None}, {"display_name"}),
    (
        InviteView,
        {**ACTIVE_INVITE, "accepted_by": None, "accepted_at": None, "revoked_at": None},
        {"revoked_at"},
    ),
    (PresenceUpdate, {"user_id": ALICE, "status": "offline", "last_seen_at": None}, {"last_seen_at"}),
    (TypingUpdate, {**TYPING, "root_id": None}, {"root_id"}),
    (ThreadTreeResponse, {"root_id": ROOT, "messages": [], "next_cursor": None}, {"next_cursor"}),
    (ThreadListResponse, {"threads": [], "next_after": None}, {"next_after"}),
    (RateLimitProfile, {**PROFILE_ROW, "description": None}, {"description"}),
    (ReadyResponse, {"ready": True, "missing": None}, {"missing"}),
]


@pytest.mark.parametrize(
    ("model", "wire", "omitted"), NULL_OMISSION_CASES, ids=[case[0].__name__ for case in NULL_OMISSION_CASES]
)
def test_null_optional_response_fields_are_omitted(
    model: type[WireModel], wire: dict[str, Any], omitted: set[str]
) -> None:
    written = model.model_validate(wire).to_wire()
    assert omitted.isdisjoint(written)
    assert None not in written.values()


def test_thread_summary_writes_a_null_root_author() -> None:
    written = ThreadSummary.model_validate({**THREAD_SUMMARY, "root_author": None}).to_wire()
    assert "root_author" in written
    assert written["root_author"] is None


def test_thread_list_keeps_the_null_root_author_of_nested_summaries() -> None:
    summary = {**THREAD_SUMMARY, "root_author": None}
    assert ThreadListResponse.model_validate({"threads": [summary]}).to_wire() == {"threads": [summary]}


def test_thread_summary_requires_root_author() -> None:
    without_author = {key: value for key, value in THREAD_SUMMARY.items() if key != "root_author"}
    with pytest.raises(ValidationError):
        ThreadSummary.model_validate(without_author)


@pytest.mark.parametrize(
    ("model", "wire", "field"),
    [
        (MessageView, ROOT_MESSAGE, "conversation_id"),
        (ConversationCreateResponse, {"conversation_id": CONVERSATION}, "conversation_id"),
        (UserPublic, {"id": BOB, "username": "bob"}, "id"),
        (TypingUpdate, TYPING, "user_id"),
    ],
)
def test_uppercase_uuid_is_written_lowercase(
    model: type[WireModel], wire: dict[str, Any], field: str
) -> None:
    written = model.model_validate({**wire, field: wire[field].upper()}).to_wire()
    assert written[field] == wire[field]


@pytest.mark.parametrize(
    "malformed",
    [
        "0193a5b27c1e7d3a9f213b4c5d6e7f80",
        "{0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80}",
        "urn:uuid:0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80",
        "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f8",
        "",
    ],
)
def test_uuid_that_is_not_hyphenated_is_rejected(malformed: str) -> None:
    with pytest.raises(ValidationError):
        ConversationCreateResponse.model_validate({"conversation_id": malformed})


@pytest.mark.parametrize(
    ("given", "written"),
    [
        (T0, T0),
        ("2025-03-08T14:30:00Z", "2025-03-08T14:30:00.000000Z"),
        ("2025-03-08T16:30:00.5+02:00", "2025-03-08T14:30:00.500000Z"),
        (datetime(2025, 3, 8, 14, 30, tzinfo=UTC), "2025-03-08T14:30:00.000000Z"),
        (
            datetime(2025, 3, 8, 9, 30, 0, 42, tzinfo=timezone(timedelta(hours=-5))),
            "2025-03-08T14:30:00.000042Z",
        ),
        (datetime(2025, 3, 8, 14, 30, 0, 123456), T0),
    ],
    ids=["six-digits", "no-fraction", "offset-string", "aware-utc", "aware-offset", "naive-is-utc"],
)
def test_timestamp_is_written_utc_with_six_digits_and_z(given: object, written: str) -> None:
    chunk = MessageChunk.model_validate({"message_id": REPLY, "idx": 1, "content": "x", "created_at": given})
    assert chunk.to_wire()["created_at"] == written


def test_authenticated_user_roles_are_written_sorted_without_duplicates() -> None:
    user = AuthenticatedUser.model_validate({**ALICE_USER, "roles": ["member", "admin", "member"]})
    assert user.to_wire()["roles"] == ["admin", "member"]


def test_authenticated_user_without_roles_is_rejected() -> None:
    with pytest.raises(ValidationError):
        AuthenticatedUser.model_validate({**ALICE_USER, "roles": []})


def test_message_chunk_list_is_a_bare_array() -> None:
    chunks = [
        {"message_id": REPLY, "idx": 0, "content": "Hel", "created_at": T0},
        {"message_id": REPLY, "idx": 1, "content": "lo", "created_at": T1},
    ]
    parsed = MESSAGE_CHUNK_LIST_ADAPTER.validate_json(orjson.dumps(chunks))
    assert MESSAGE_CHUNK_LIST_ADAPTER.dump_json(parsed) == orjson.dumps(chunks)


def test_rate_limit_profile_list_is_a_bare_array() -> None:
    described = {**PROFILE_ROW, "description": None}
    parsed = RATE_LIMIT_PROFILE_LIST_ADAPTER.validate_python([PROFILE_ROW, described])
    expected = [PROFILE_ROW, {key: value for key, value in PROFILE_ROW.items() if key != "description"}]
    assert RATE_LIMIT_PROFILE_LIST_ADAPTER.dump_python(parsed, mode="json") == expected


def test_rate_limit_assignment_list_is_a_bare_array() -> None:
    parsed = RATE_LIMIT_ASSIGNMENT_LIST_ADAPTER.validate_json(orjson.dumps([ASSIGNMENT_ROW]))
    assert RATE_LIMIT_ASSIGNMENT_LIST_ADAPTER.dump_json(parsed) == orjson.dumps([ASSIGNMENT_ROW])


def test_integer_rate_is_written_back_as_an_integer() -> None:
    assert RateLimitProfile.model_validate(PROFILE_ROW).to_json().count(b'"requests_per_second":5,') == 1


def test_ready_response_without_missing_dependencies_is_ready() -> None:
    assert ReadyResponse.from_missing([]).to_wire() == {"ready": True}


def test_ready_response_lists_missing_dependencies() -> None:
    response = ReadyResponse.from_missing([ReadinessCheck.DATABASE, ReadinessCheck.REDIS])
    assert response.to_wire() == {"ready": False, "missing": ["database", "redis"]}


def test_ready_response_rejects_an_unknown_missing_label() -> None:
    with pytest.raises(ValidationError):
        ReadyResponse.model_validate({"ready": False, "missing": ["kafka"]})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("path", "M0193A5B27C1E7D3A9F213B4C5D6E7F80"),
        ("path", "0193a5b27c1e7d3a9f213b4c5d6e7f80"),
        ("path", ".".join([ROOT_PATH] * 65)),
        ("path", f"{ROOT_PATH}\n"),
        ("depth", 0),
        ("depth", 65),
    ],
)
def test_message_view_rejects_an_impossible_path_or_depth(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        MessageView.model_validate({**ROOT_MESSAGE, field: value})


def test_message_view_accepts_the_deepest_path() -> None:
    deepest = ".".join([ROOT_PATH] * 64)
    assert MessageView.model_validate({**ROOT_MESSAGE, "path": deepest, "depth": 64}).path == deepest
