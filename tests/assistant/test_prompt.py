"""The prompt of contract 9.3: chain filtering, system text, chat messages, flattened text, word counts."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from threadline_api.assistant.prompt import ChainMessage, Turn, ancestor_ids, build_prompt
from threadline_shared.ids import path_label, uuid7

DELETED = datetime(2025, 3, 8, tzinfo=UTC)


def test_the_chain_skips_deleted_and_blank_messages_and_trims_content() -> None:
    prompt = build_prompt(
        [
            ChainMessage("user", "  What is a thread?  "),
            ChainMessage("assistant", "   "),
            ChainMessage("user", "secret", deleted_at=DELETED),
            ChainMessage("assistant", "\tA tree of replies.\n"),
            ChainMessage("user", "Thanks"),
        ]
    )
    assert prompt.system is None
    assert prompt.turns == (
        Turn("user", "What is a thread?"),
        Turn("assistant", "A tree of replies."),
        Turn("user", "Thanks"),
    )


def test_system_text_is_the_configured_prompt_then_every_system_message() -> None:
    prompt = build_prompt(
        [
            ChainMessage("system", " Answer in French. "),
            ChainMessage("user", "hi"),
            ChainMessage("system", "Be brief"),
        ],
        system_prompt="You are Threadline.",
    )
    assert prompt.system == "You are Threadline.\nAnswer in French.\nBe brief"
    assert prompt.chat_messages() == [
        {"role": "system", "content": "You are Threadline.\nAnswer in French.\nBe brief"},
        {"role": "user", "content": "hi"},
    ]


def test_chat_providers_get_tool_messages_as_user_messages_prefixed_tool() -> None:
    prompt = build_prompt([ChainMessage("user", "weather?"), ChainMessage("tool", "sunny, 21C")])
    assert prompt.chat_messages() == [
        {"role": "user", "content": "weather?"},
        {"role": "user", "content": "Tool: sunny, 21C"},
    ]


def test_the_flattened_text_ends_with_an_assistant_line() -> None:
    prompt = build_prompt(
        [
            ChainMessage("user", "hi"),
            ChainMessage("tool", "ok"),
            ChainMessage("assistant", "hello"),
            ChainMessage("user", "more"),
        ]
    )
    assert prompt.flattened() == "User: hi\nTool: ok\nAssistant: hello\nUser: more\nAssistant:"


def test_no_extra_assistant_line_after_an_assistant_message() -> None:
    prompt = build_prompt([ChainMessage("user", "hi"), ChainMessage("assistant", "hello")])
    assert prompt.flattened() == "User: hi\nAssistant: hello"


def test_an_empty_chain_flattens_to_the_assistant_line() -> None:
    assert build_prompt([]).flattened() == "Assistant:"
    assert build_prompt([]).chat_messages() == []


def test_prompt_words_count_the_system_text_and_the_flattened_text() -> None:
    prompt = build_prompt([ChainMessage("user", "What is  a thread?")], system_prompt="Be brief.")
    # "Be brief." = 2; "User: What is a thread?" = 5; "Assistant:" = 1
    assert prompt.word_count() == 8


def test_ancestor_ids_are_read_from_the_path_root_first() -> None:
    root, reply, leaf = uuid7(), uuid7(), uuid7()
    path = ".".join(path_label(i) for i in (root, reply, leaf))
    assert ancestor_ids(path) == [root, reply, leaf]
    assert ancestor_ids(path_label(root)) == [UUID(str(root))]
