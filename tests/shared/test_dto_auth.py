"""Auth request DTOs (contract 3.1) and the limits of 1.5 they carry."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from threadline_shared.dto import (
    AdminCreateUserRequest,
    GlobalRole,
    LoginRequest,
    RegisterRequest,
    SetupRequest,
)

ALICE = {"username": "alice", "email": "alice@example.com", "password": "correct horse"}


def _rejected_fields(model: type[Any], body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return {str(error["loc"][0]) for error in caught.value.errors()}


@pytest.mark.parametrize("username", ["abc", "a" * 32, "Alice_B.c-9", "...", "0_0"])
def test_username_within_the_rules_is_accepted(username: str) -> None:
    assert RegisterRequest.model_validate({**ALICE, "username": username}).username == username


@pytest.mark.parametrize(
    "username",
    ["ab", "a" * 33, "", "al ice", " alice", "alice ", "alicé", "al@ce", "alice\n", "ali/ce", "ａｌｉｃｅ"],
)
def test_username_breaking_the_rules_is_rejected(username: str) -> None:
    assert _rejected_fields(RegisterRequest, {**ALICE, "username": username}) == {"username"}


@pytest.mark.parametrize(
    "email",
    ["a@b", "alice@example.com", f"{'a' * 64}@{'b' * 189}", "x@" + "y" * 252, "Alice+tag@Example.COM"],
)
def test_email_within_the_rules_is_accepted(email: str) -> None:
    assert RegisterRequest.model_validate({**ALICE, "email": email}).email == email


@pytest.mark.parametrize(
    "email",
    ["", "a@", "@b", "ab", "alice.example.com", "a@b@c", "@@@", "x@" + "y" * 253, "a@@b"],
    ids=[
        "empty",
        "no-domain",
        "no-local",
        "two-chars",
        "no-at",
        "two-ats",
        "only-ats",
        "255-chars",
        "double-at",
    ],
)
def test_email_breaking_the_rules_is_rejected(email: str) -> None:
    assert _rejected_fields(RegisterRequest, {**ALICE, "email": email}) == {"email"}


@pytest.mark.parametrize("password", ["12345678", "x" * 256, "        ", "é" * 8, "😀" * 256])
def test_password_of_8_to_256_code_points_is_accepted(password: str) -> None:
    assert RegisterRequest.model_validate({**ALICE, "password": password}).password == password


@pytest.mark.parametrize("password", ["", "1234567", "x" * 257, "😀" * 7])
def test_password_outside_8_to_256_code_points_is_rejected(password: str) -> None:
    assert _rejected_fields(RegisterRequest, {**ALICE, "password": password}) == {"password"}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Alice", "Alice"),
        ("  Alice Liddell \t", "Alice Liddell"),
        ("x", "x"),
        ("d" * 64, "d" * 64),
        (f"  {'d' * 64}  ", "d" * 64),
        ("", None),
        ("   \n\t", None),
    ],
)
def test_display_name_is_trimmed_and_empty_means_not_given(given: str, stored: str | None) -> None:
    assert RegisterRequest.model_validate({**ALICE, "display_name": given}).display_name == stored


def test_display_name_longer_than_64_characters_after_trimming_is_rejected() -> None:
    assert _rejected_fields(RegisterRequest, {**ALICE, "display_name": " " + "d" * 65}) == {"display_name"}


@pytest.mark.parametrize("model", [SetupRequest, RegisterRequest, AdminCreateUserRequest])
def test_new_user_requests_share_the_username_rule(model: type[Any]) -> None:
    assert _rejected_fields(model, {**ALICE, "username": "no"}) == {"username"}


@pytest.mark.parametrize(
    ("roles", "granted"),
    [
        (None, [GlobalRole.MEMBER]),
        ([], [GlobalRole.MEMBER]),
        (["admin"], [GlobalRole.ADMIN, GlobalRole.MEMBER]),
        (["read_only", "read_only"], [GlobalRole.MEMBER, GlobalRole.READ_ONLY]),
        (["member", "admin", "read_only"], [GlobalRole.ADMIN, GlobalRole.MEMBER, GlobalRole.READ_ONLY]),
    ],
)
def test_admin_created_user_always_gets_member(roles: list[str] | None, granted: list[GlobalRole]) -> None:
    assert AdminCreateUserRequest.model_validate({**ALICE, "roles": roles}).granted_roles() == granted


def test_admin_created_user_with_an_unknown_role_is_rejected() -> None:
    assert _rejected_fields(AdminCreateUserRequest, {**ALICE, "roles": ["superuser"]}) == {"roles"}


@pytest.mark.parametrize("identifier", ["alice", "alice@example.com", " alice "])
def test_login_identifier_is_kept_as_sent(identifier: str) -> None:
    assert LoginRequest.model_validate({"email": identifier, "password": "x"}).email == identifier


@pytest.mark.parametrize("identifier", ["", "   ", "\t\n"])
def test_login_with_a_blank_identifier_is_rejected(identifier: str) -> None:
    assert _rejected_fields(LoginRequest, {"email": identifier, "password": "pw"}) == {"email"}


def test_login_with_an_empty_password_is_rejected() -> None:
    assert _rejected_fields(LoginRequest, {"email": "alice", "password": ""}) == {"password"}


@pytest.mark.parametrize("password", ["x", "        ", "y" * 300])
def test_login_password_has_no_length_rule(password: str) -> None:
    assert LoginRequest.model_validate({"email": "alice", "password": password}).password == password
