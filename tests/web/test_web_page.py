"""The web page (clients/web) in a real headless Chromium against the real stack through the Caddy edge:
two people in two browser contexts (see conftest: setup, registration, an invite link accepted).

Screenshots of the main views go to docs/screenshots/ with THREADLINE_SCREENSHOTS=1.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from tests.web.a11y import low_contrast_text, unnamed_controls
from tests.web.conftest import ANSWER, CONVERSATION, PASSWORD, People, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]


def messages(page: Page) -> Locator:
    return page.get_by_role("list", name="Messages").locator("li.msg")


def member(page: Page, name: str) -> Locator:
    return page.get_by_role("list", name="Members").get_by_role("listitem").filter(has_text=name)


async def open_thread(page: Page, excerpt: str) -> None:
    await page.get_by_role("list", name="Threads").get_by_role("link").filter(has_text=excerpt).click()
    await expect(messages(page).first).to_contain_text(excerpt)


async def shown(page: Page) -> dict[str, str]:
    """The open thread as the page shows it: message id -> text."""
    items = await messages(page).evaluate_all(
        "items => items.map((item) => [item.dataset.messageId, item.querySelector('.msg-text').textContent])"
    )
    return dict(items)


async def stored(page: Page) -> dict[str, str]:
    """The open thread as the api holds it (read by the page's own fetch): message id -> text shown."""
    tree = await page.evaluate(
        "(() => fetch(`/api/threads/${location.hash.split('/t/')[1]}/tree`).then((r) => r.json()))()"
    )
    return {
        m["id"]: "This message was deleted." if "deleted_at" in m else m["content"] for m in tree["messages"]
    }


async def stream_bookkeeping(page: Page) -> dict[str, Any]:
    bookkeeping: dict[str, Any] = await page.evaluate("window.threadline.stream()")
    return bookkeeping


async def test_both_people_see_the_conversation_live_with_presence(
    people: People, page_errors: list[str]
) -> None:
    alice, bob = people.alice, people.bob
    await expect(bob.get_by_role("link", name=CONVERSATION)).to_be_visible()
    await expect(bob.get_by_text("you: member")).to_be_visible()
    await expect(alice.get_by_text("you: owner")).to_be_visible()
    for page in (alice, bob):
        await expect(page.get_by_role("status").filter(has_text="live")).to_be_visible()
    # Bob's heartbeat came before he joined, so Alice's page learns it from the presence snapshot it reads on
    # his membership.changed; Bob's page from the stream's snapshot. Each sees the other online.
    await expect(member(alice, "Bob").get_by_role("img", name="online")).to_be_visible()
    await expect(member(bob, "Alice").get_by_role("img", name="online")).to_be_visible()
    assert not page_errors


async def test_someone_can_be_added_by_username(people: People, page_errors: list[str]) -> None:
    alice, bob = people.alice, people.bob
    registered = await alice.evaluate(
        """(account) => fetch("/api/auth/register", {method: "POST", body: JSON.stringify(account),
            headers: {"Content-Type": "application/json"}}).then((response) => response.status)""",
        {"username": "carol", "email": "carol@example.com", "password": PASSWORD},
    )
    assert registered == 201
    await alice.get_by_role("button", name="Invite people").click()
    await alice.get_by_label("Username").fill("carol")
    await alice.get_by_role("button", name="Add to conversation").click()
    await expect(alice.get_by_text("carol was added.")).to_be_visible()
    await alice.get_by_role("button", name="Invite people").click()
    for page in (alice, bob):  # Bob's page hears of it from the stream (membership.changed)
        await expect(member(page, "carol").get_by_role("img", name="offline")).to_be_visible()
    assert not page_errors


async def test_a_post_shows_up_live_after_a_typing_indicator(people: People, page_errors: list[str]) -> None:
    alice, bob = people.alice, people.bob
    await bob.get_by_label("First message of a new thread").press_sequentially("Shall we ship", delay=20)
    await expect(alice.get_by_text("Bob is typing…")).to_be_visible()
    await bob.get_by_label("First message of a new thread").press_sequentially(" on Friday?", delay=20)
    await bob.keyboard.press("Enter")

    thread = (
        alice.get_by_role("list", name="Threads")
        .get_by_role("link")
        .filter(has_text="Shall we ship on Friday?")
    )
    await expect(thread).to_be_visible()
    await expect(alice.get_by_text("Bob is typing…")).to_be_hidden()  # posting stops typing
    await expect(thread.locator(".badge")).to_be_visible()  # unread for Alice
    await expect(alice.get_by_role("link", name=f"{CONVERSATION}, ", exact=False)).to_be_visible()

    await open_thread(alice, "Shall we ship on Friday?")
    await expect(thread.locator(".badge")).to_be_hidden()  # read once open
    await expect(messages(alice).first).to_contain_text("Bob")
    assert not page_errors


async def test_the_assistant_answer_streams_in_place_and_stop_ends_it(
    people: People, page_errors: list[str]
) -> None:
    alice, bob = people.alice, people.bob
    await open_thread(bob, "Shall we ship on Friday?")
    streaming = messages(alice).and_(alice.locator('[data-status="streaming"]'))
    await expect(streaming).to_have_count(0, timeout=15000)  # the answer to Bob's post is finished

    await alice.get_by_label("Reply", exact=True).fill("What does the assistant think?")
    await alice.get_by_role("button", name="Ask the assistant").click()
    await expect(streaming).to_have_count(1)
    answer = streaming.locator(".msg-text")
    await expect(answer).to_contain_text("The release notes")  # a few words in, still streaming
    await expect(streaming).to_contain_text("answering…")
    await screenshot(alice, "assistant-streaming")
    await streaming.get_by_role("button", name="Stop the assistant's answer").click()

    stopped = messages(alice).filter(has_text="stopped")
    await expect(stopped).to_have_count(1)
    text = await stopped.locator(".msg-text").inner_text()
    assert ANSWER.startswith(text.strip()) and len(text.strip()) < len(ANSWER), text
    await asyncio.sleep(0.5)
    assert await stopped.locator(".msg-text").inner_text() == text, "no word after Stop"
    bobs_copy = messages(bob).filter(has_text="stopped").locator(".msg-text")
    await expect(bobs_copy).to_have_text(text)
    assert not page_errors


async def test_own_messages_can_be_edited_and_deleted(people: People, page_errors: list[str]) -> None:
    alice, bob = people.alice, people.bob
    await bob.get_by_label("Reply", exact=True).fill("Lets aim for 9:00")
    await bob.keyboard.press("Enter")
    mine = messages(bob).filter(has_text="Lets aim for 9:00")
    theirs = messages(alice).filter(has_text="Lets aim for 9:00")
    await expect(theirs).to_have_count(1)
    await expect(theirs.get_by_role("button", name="Edit message of Bob")).to_have_count(0)  # not Alice's

    mine = bob.locator(f'li[data-message-id="{await mine.get_attribute("data-message-id")}"]')
    await mine.get_by_role("button", name="Edit message of Bob").click()
    await mine.get_by_role("textbox", name="Edit message").fill("Let's aim for 9:30")
    await mine.get_by_role("textbox", name="Edit message").press("Enter")
    edited = messages(alice).filter(has_text="Let's aim for 9:30")
    await expect(edited).to_contain_text("edited")

    await mine.get_by_role("button", name="Delete message of Bob").click()
    await mine.get_by_role("button", name="Delete", exact=True).click()
    await expect(messages(alice).filter(has_text="Let's aim for 9:30")).to_have_count(0)
    await expect(messages(alice).filter(has_text="This message was deleted.")).to_have_count(1)
    await expect(messages(bob).and_(bob.locator('[data-status="streaming"]'))).to_have_count(0, timeout=15000)
    await screenshot(alice, "conversation")
    assert not page_errors


async def test_a_cut_stream_shows_reconnecting_then_catches_up_without_duplicates(
    people: People, page_errors: list[str]
) -> None:
    alice, bob = people.alice, people.bob
    streamer = people.stack.processes["streamer"]
    reconnecting = alice.get_by_role("status").filter(has_text="reconnecting…")
    before = await stream_bookkeeping(alice)

    await asyncio.to_thread(streamer.stop)  # every stream through the edge is cut
    try:
        await expect(reconnecting).to_be_visible()
        await bob.get_by_label("Reply", exact=True).fill("Posted while the stream was down")
        await bob.keyboard.press("Enter")
        await expect(messages(bob).filter(has_text="Posted while the stream was down")).to_have_count(1)
        await screenshot(alice, "reconnecting")
    finally:
        streamer.start()
    await asyncio.to_thread(streamer.wait_ready, 30)

    await expect(reconnecting).to_be_hidden(timeout=20000)
    await expect(alice.get_by_role("status").filter(has_text="live")).to_be_visible()
    await expect(messages(alice).filter(has_text="Posted while the stream was down")).to_have_count(1)
    # The assistant answered meanwhile; once it is done, the page shows exactly what the api holds: every
    # message once, each answer word once, however the resume overlapped what the page had.
    await expect(messages(alice).and_(alice.locator('[data-status="streaming"]'))).to_have_count(
        0, timeout=15000
    )
    assert await shown(alice) == await stored(alice)
    assert ANSWER in (await shown(alice)).values()
    after = await stream_bookkeeping(alice)
    assert after["opens"] > before["opens"], "the page opened the stream again"
    applied = after["applied"]
    assert applied == sorted(set(applied)), "every durable event once, in order"
    assert not page_errors


async def test_keyboard_only_reaches_compose_and_send_with_labelled_controls_and_readable_contrast(
    people: People, page_errors: list[str]
) -> None:
    bob = people.bob
    await bob.goto(people.conversation_url)
    await bob.reload()  # a fresh page, signed in by its session cookie; focus starts at the top
    await expect(bob.get_by_role("status").filter(has_text="live")).to_be_visible()
    compose = bob.get_by_label("First message of a new thread")
    focus_order: list[str] = []
    for _ in range(80):
        await bob.keyboard.press("Tab")
        focused = await bob.evaluate(
            "(() => { const el = document.activeElement; return el.getAttribute('aria-label')"
            " || (el.labels && el.labels.length ? el.labels[0].textContent : el.textContent.trim()); })()"
        )
        focus_order.append(focused)
        if await compose.evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError(f"Tab never reached the compose box: {focus_order}")
    assert focus_order[0] == "Skip to content"
    conversation_link = next(i for i, name in enumerate(focus_order) if name.startswith(CONVERSATION))
    assert focus_order.index("New conversation") < conversation_link < focus_order.index("New thread")
    assert "Threads" not in focus_order  # headings are not tab stops

    await bob.keyboard.type("Typed without a mouse")
    await bob.keyboard.press("Shift+Enter")
    await bob.keyboard.type("on two lines")
    await bob.keyboard.press("Tab")
    assert await bob.evaluate("document.activeElement.textContent") == "Ask the assistant"
    await bob.keyboard.press("Enter")
    posted = messages(bob).first
    await expect(posted.locator(".msg-text")).to_have_text("Typed without a mouse\non two lines")

    for page in (bob, people.alice):
        assert await unnamed_controls(page) == []
        assert await low_contrast_text(page) == []
    assert not page_errors
