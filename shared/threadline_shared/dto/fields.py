"""Request field types carrying the limits of contract 1.5.

Each type is strict (contract 1.1: ``2``, ``true`` or a list is not a string) and its validator raises
``ValueError`` with a message fit for ``details.errors[].message`` (1.7).

:data:`NullMeansDefault` implements "an optional request field may be omitted or ``null``; both mean not
given" for fields whose default is not ``None``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StringConstraints
from pydantic_core import PydanticUseDefault

CONTENT_MAX_CHARS = 32_000
TITLE_MAX_CHARS = 256
REASON_MAX_CHARS = 512
USERNAME_MIN_CHARS = 3
USERNAME_MAX_CHARS = 32
EMAIL_MIN_CHARS = 3
EMAIL_MAX_CHARS = 254
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 256
DISPLAY_NAME_MAX_CHARS = 64
INVITE_TTL_MAX_SECONDS = 2_592_000

_USERNAME_CHARS = re.compile(r"[A-Za-z0-9_.-]+")


def _use_default_for_null(value: Any) -> Any:
    if value is None:
        raise PydanticUseDefault()
    return value


NullMeansDefault = BeforeValidator(_use_default_for_null)
"""Annotate a request field with a non-``None`` default so that an explicit ``null`` takes that default."""


def check_content(value: str) -> str:
    """Message content: at least one non-whitespace character; returned unchanged (stored as sent)."""
    if value.isspace():
        raise ValueError("must contain a non-whitespace character")
    return value


def normalise_title(value: str) -> str:
    """Conversation title: trimmed, whitespace runs collapsed to one space, then 1..256 characters."""
    title = " ".join(value.split())
    if not title:
        raise ValueError("must not be blank")
    if len(title) > TITLE_MAX_CHARS:
        raise ValueError(f"must have at most {TITLE_MAX_CHARS} characters after normalisation")
    return title


def check_username(value: str) -> str:
    if not _USERNAME_CHARS.fullmatch(value):
        raise ValueError("may only contain letters, digits, '_', '.' and '-'")
    return value


def check_email(value: str) -> str:
    """Exactly one ``@`` with at least one character on each side (contract 1.5; no further rules)."""
    local, at, domain = value.partition("@")
    if not at or "@" in domain:
        raise ValueError("must contain exactly one '@'")
    if not local or not domain:
        raise ValueError("must have text on both sides of '@'")
    return value


def normalise_display_name(value: str | None) -> str | None:
    """Display name: trimmed; empty after trimming means not given; then at most 64 characters."""
    if value is None:
        return None
    name = value.strip()
    if not name:
        return None
    if len(name) > DISPLAY_NAME_MAX_CHARS:
        raise ValueError(f"must have at most {DISPLAY_NAME_MAX_CHARS} characters after trimming")
    return name


def check_not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


MessageContent = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=CONTENT_MAX_CHARS),
    AfterValidator(check_content),
]
Reason = Annotated[str, StringConstraints(strict=True, max_length=REASON_MAX_CHARS)]
ConversationTitle = Annotated[str, StringConstraints(strict=True), AfterValidator(normalise_title)]
Username = Annotated[
    str,
    StringConstraints(strict=True, min_length=USERNAME_MIN_CHARS, max_length=USERNAME_MAX_CHARS),
    AfterValidator(check_username),
]
Email = Annotated[
    str,
    StringConstraints(strict=True, min_length=EMAIL_MIN_CHARS, max_length=EMAIL_MAX_CHARS),
    AfterValidator(check_email),
]
Password = Annotated[
    str, StringConstraints(strict=True, min_length=PASSWORD_MIN_CHARS, max_length=PASSWORD_MAX_CHARS)
]
DisplayName = Annotated[
    Annotated[str, StringConstraints(strict=True)] | None, AfterValidator(normalise_display_name)
]
NonBlankString = Annotated[str, StringConstraints(strict=True), AfterValidator(check_not_blank)]
