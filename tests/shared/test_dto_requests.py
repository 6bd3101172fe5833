"""Rules shared by every request DTO (contract 1.1, 1.2): strict types, null = not given, unknown fields."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

import threadline_shared.dto as dto
from threadline_shared.dto import (
    AcceptInviteRequest,
    AddParticipantRequest,
    AdminCreateUserRequest,
    AssignRateLimitRequest,
    ConversationCreateRequest,
    ConversationRole,
    CreateInviteRequest,
    CreateRateLimitProfileRequest,
    HeartbeatRequest,
    LoginRequest,
    MarkThreadReadRequest,
    MessageDeleteRequest,
    MessageEditRequest,
    MessageRole,
    PostRootMessageRequest,
    PresenceStatus,
    RegisterRequest,
    ReplyMessageRequest,
    RequestModel,
    SetupRequest,
    TypingRequest,
    UpdateRateLimitProfileRequest,
)

CONVERSATION = "7d9f1c2e-4b3a-4f6e-9a1b-2c3d4e5f6a7b"
ROOT = "0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80"
BOB = "5b6c7d8e-9f00-4a1b-8c2d-3e4f5a6b7c8d"
PROFILE = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
NEW_USER = {"username": "alice", "email": "alice@example.com", "password": "correct horse"}

# A minimal valid body for every request DTO.
MINIMAL_BODIES: list[tuple[type[RequestModel], dict[str, Any]]] = [
    (SetupRequest, NEW_USER),
    (RegisterRequest, NEW_USER),
    (AdminCreateUserRequest, NEW_USER),
    (LoginRequest, {"email": "alice", "password": "correct horse"}),
    (ConversationCreateRequest, {"title": "Weekly sync"}),
    (AddParticipantRequest, {"user_id": BOB}),
    (CreateInviteRequest, {"email": "carol@example.com"}),
    (AcceptInviteRequest, {"token": "t" * 43}),
    (PostRootMessageRequest, {"content": "hi"}),
    (ReplyMessageRequest, {"content": "hi"}),
    (MessageEditRequest, {"content": "hi"}),
    (MessageDeleteRequest, {}),
    (MarkThreadReadRequest, {}),
    (HeartbeatRequest, {}),
    (TypingRequest, {"conversation_id": CONVERSATION, "seconds": 5}),
    (CreateRateLimitProfileRequest, {"name": "burst", "params": {"requests_per_second": 1, "burst": 1}}),
    (UpdateRateLimitProfileRequest, {"params": {"requests_per_second": 1, "burst": 1}}),
    (AssignRateLimitRequest, {"profile_id": PROFILE, "method": "POST", "path": "/api/typing"}),
]

Validate = Callable[[type[RequestModel], dict[str, Any]], RequestModel]


def _from_python(model: type[RequestModel], body: dict[str, Any]) -> RequestModel:
    return model.model_validate(body)


def _from_json(model: type[RequestModel], body: dict[str, Any]) -> RequestModel:
    return model.model_validate_json(json.dumps(body))


@pytest.fixture(params=[_from_python, _from_json], ids=["python", "json"])
def validate(request: pytest.FixtureRequest) -> Validate:
    """Services may validate the decoded body or the raw JSON; both must apply the same rules."""
    function: Validate = request.param
    return function


def _rejected_fields(validate: Validate, model: type[RequestModel], body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        validate(model, body)
    return {str(error["loc"][0]) for error in caught.value.errors()}


def test_every_exported_request_model_has_a_minimal_body() -> None:
    exported = {
        value
        for value in vars(dto).values()
        if isinstance(value, type) and issubclass(value, RequestModel) and value is not RequestModel
    }
    assert exported == {model for model, _ in MINIMAL_BODIES}


@pytest.mark.parametrize(("model", "body"), MINIMAL_BODIES, ids=[m.__name__ for m, _ in MINIMAL_BODIES])
def test_minimal_body_is_accepted(
    validate: Validate, model: type[RequestModel], body: dict[str, Any]
) -> None:
    assert isinstance(validate(model, body), model)


@pytest.mark.parametrize(("model", "body"), MINIMAL_BODIES, ids=[m.__name__ for m, _ in MINIMAL_BODIES])
def test_unknown_fields_are_ignored(
    validate: Validate, model: type[RequestModel], body: dict[str, Any]
) -> None:
    parsed = validate(model, {**body, "surprise": 1, "is_admin": True})
    assert parsed == validate(model, body)


REQUIRED_FIELDS = [
    (model, field)
    for model, body in MINIMAL_BODIES
    for field in body
    if model.model_fields[field].is_required()
]


@pytest.mark.parametrize(
    ("model", "field"), REQUIRED_FIELDS, ids=[f"{m.__name__}.{f}" for m, f in REQUIRED_FIELDS]
)
def test_missing_required_field_is_rejected(
    validate: Validate, model: type[RequestModel], field: str
) -> None:
    body = dict(MINIMAL_BODIES[[m for m, _ in MINIMAL_BODIES].index(model)][1])
    del body[field]
    assert _rejected_fields(validate, model, body) == {field}


@pytest.mark.parametrize(
    ("model", "field"), REQUIRED_FIELDS, ids=[f"{m.__name__}.{f}" for m, f in REQUIRED_FIELDS]
)
def test_null_required_field_is_rejected(validate: Validate, model: type[RequestModel], field: str) -> None:
    body = dict(MINIMAL_BODIES[[m for m, _ in MINIMAL_BODIES].index(model)][1])
    assert _rejected_fields(validate, model, {**body, field: None}) == {field}


NOT_AN_INTEGER: tuple[object, ...] = (2.5, 2.0, "2", True, None, [2])
NOT_A_BOOLEAN: tuple[object, ...] = ("true", 1, 0, "false", [])

WRONG_TYPES: list[tuple[type[RequestModel], dict[str, Any], str, object]] = [
    *[(TypingRequest, {"conversation_id": CONVERSATION}, "seconds", bad) for bad in NOT_AN_INTEGER],
    *[(CreateInviteRequest, {"email": "c@example.com"}, "ttl_seconds", bad) for bad in NOT_AN_INTEGER[:-2]],
    *[(ConversationCreateRequest, {"title": "t"}, "is_group", bad) for bad in NOT_A_BOOLEAN],
    *[(ConversationCreateRequest, {"title": "t"}, "assistant_replies", bad) for bad in NOT_A_BOOLEAN],
    (ConversationCreateRequest, {}, "title", 42),
    (PostRootMessageRequest, {}, "content", 42),
    (PostRootMessageRequest, {}, "content", ["hi"]),
    (ReplyMessageRequest, {"content": "hi"}, "role", 1),
    (MessageEditRequest, {"content": "hi"}, "reason", 7),
    (RegisterRequest, {"email": "a@b.c", "password": "12345678"}, "username", 12345),
    (RegisterRequest, {"username": "alice", "password": "12345678"}, "email", {"a": "b"}),
    (RegisterRequest, {"username": "alice", "email": "a@b.c"}, "password", 12345678),
    (RegisterRequest, {**NEW_USER}, "display_name", 5),
    (AdminCreateUserRequest, {**NEW_USER}, "roles", "admin"),
    (LoginRequest, {"password": "pw"}, "email", 5),
    (AcceptInviteRequest, {}, "token", 5),
    (AddParticipantRequest, {}, "user_id", "5b6c7d8e9f004a1b8c2d3e4f5a6b7c8d"),
    (AddParticipantRequest, {}, "user_id", 5),
    (MarkThreadReadRequest, {}, "message_id", "not-a-uuid"),
    (TypingRequest, {"seconds": 3}, "conversation_id", "7D9F1C2E4B3A4F6E9A1B2C3D4E5F6A7B"),
    (TypingRequest, {"conversation_id": CONVERSATION, "seconds": 3}, "root_id", ROOT.replace("-", "")),
    (HeartbeatRequest, {}, "status", True),
    (CreateRateLimitProfileRequest, {"params": {}}, "name", 5),
    (CreateRateLimitProfileRequest, {"name": "n"}, "params", [1, 2]),
    (AssignRateLimitRequest, {"method": "GET", "path": "/"}, "profile_id", PROFILE.replace("-", "")),
]


@pytest.mark.parametrize(
    ("model", "body", "field", "bad"),
    WRONG_TYPES,
    ids=[f"{model.__name__}.{field}={bad!r}" for model, _, field, bad in WRONG_TYPES],
)
def test_value_of_the_wrong_type_is_rejected(
    validate: Validate, model: type[RequestModel], body: dict[str, Any], field: str, bad: object
) -> None:
    assert _rejected_fields(validate, model, {**body, field: bad}) == {field}


NULL_MEANS_DEFAULT: list[tuple[type[RequestModel], dict[str, Any], str, object]] = [
    (ConversationCreateRequest, {"title": "t"}, "is_group", False),
    (ConversationCreateRequest, {"title": "t"}, "assistant_replies", True),
    (ConversationCreateRequest, {"title": "t", "is_group": True}, "assistant_replies", False),
    (AddParticipantRequest, {"user_id": BOB}, "role", ConversationRole.MEMBER),
    (CreateInviteRequest, {"email": "c@example.com"}, "role", ConversationRole.MEMBER),
    (CreateInviteRequest, {"email": "c@example.com"}, "ttl_seconds", None),
    (PostRootMessageRequest, {"content": "hi"}, "role", MessageRole.USER),
    (ReplyMessageRequest, {"content": "hi"}, "role", MessageRole.USER),
    (MessageEditRequest, {"content": "hi"}, "reason", None),
    (MessageDeleteRequest, {}, "reason", None),
    (MarkThreadReadRequest, {}, "message_id", None),
    (HeartbeatRequest, {}, "status", PresenceStatus.ONLINE),
    (TypingRequest, {"conversation_id": CONVERSATION, "seconds": 1}, "root_id", None),
    (RegisterRequest, NEW_USER, "display_name", None),
    (AdminCreateUserRequest, NEW_USER, "roles", None),
    (CreateRateLimitProfileRequest, {"name": "n", "params": {}}, "algorithm", None),
    (CreateRateLimitProfileRequest, {"name": "n", "params": {}}, "description", None),
    (UpdateRateLimitProfileRequest, {"params": {}}, "description", None),
]


@pytest.mark.parametrize(
    ("model", "body", "field", "default"),
    NULL_MEANS_DEFAULT,
    ids=[f"{model.__name__}.{field}" for model, _, field, _ in NULL_MEANS_DEFAULT],
)
def test_null_optional_field_means_not_given(
    validate: Validate, model: type[RequestModel], body: dict[str, Any], field: str, default: object
) -> None:
    assert getattr(validate(model, {**body, field: None}), field) == default


@pytest.mark.parametrize(
    ("model", "body", "field", "default"),
    NULL_MEANS_DEFAULT,
    ids=[f"{model.__name__}.{field}" for model, _, field, _ in NULL_MEANS_DEFAULT],
)
def test_omitted_optional_field_takes_its_default(
    validate: Validate, model: type[RequestModel], body: dict[str, Any], field: str, default: object
) -> None:
    assert getattr(validate(model, body), field) == default


def test_uppercase_uuid_in_a_body_is_accepted(validate: Validate) -> None:
    parsed = validate(AddParticipantRequest, {"user_id": BOB.upper()})
    assert isinstance(parsed, AddParticipantRequest)
    assert str(parsed.user_id) == BOB


def test_empty_body_is_a_valid_heartbeat(validate: Validate) -> None:
    assert validate(HeartbeatRequest, {}) == HeartbeatRequest(status=PresenceStatus.ONLINE)
