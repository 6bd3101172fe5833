"""The web page's fixtures: one stack with the Caddy edge (the page's one origin) and one headless Chromium
for the whole module, and two people, Alice and Bob, signed in in two browser contexts and sharing a
conversation that Alice created and Bob joined through an invite link.

The assistant answers every message of that conversation with a scripted answer, one word every
``DELTA_DELAY_MS``, so that a test can watch it stream and stop it half way.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

from tests.support.servers import SuiteServers
from tests.support.stack import Stack, running_stack
from tests.web.a11y import low_contrast_text, unnamed_controls

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct horse battery staple"
CONVERSATION = "Launch plan"

ANSWER = (
    "Friday works. The release notes are ready, the migration ran on staging twice, and the rollback "
    "plan is written down. Ship it in the morning so that everyone is around to watch the dashboards, "
    "and keep the feature flag off until the first hour looks quiet."
)
ANSWER_DELTAS = re.findall(r"\S+\s*", ANSWER)
DELTA_DELAY_MS = 100  # Stop must land mid-answer: a screenshot and a click come between, on a loaded host too

WEB_ENV = {
    "THREADLINE_SCRIPTED_DELTAS": json.dumps(ANSWER_DELTAS),
    "THREADLINE_SCRIPTED_DELAY_MS": str(DELTA_DELAY_MS),
    # The browser's own reconnection waits this long (retry:) before its first attempt.
    "THREADLINE_STREAM_RETRY_MS": "1000",
}


@dataclass
class People:
    stack: Stack
    alice: Page
    bob: Page
    conversation_url: str


@pytest.fixture(scope="module")
def web_stack(
    database_url: str, servers: SuiteServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with running_stack(
        database_url, servers.redis_url, tmp_path_factory.mktemp("web"), WEB_ENV, edge=True
    ) as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def screenshot(page: Page, name: str) -> None:
    """Every run takes the screenshot (so the view renders); it replaces the one in docs/screenshots only with
    ``THREADLINE_SCREENSHOTS=1 python3 dev.py test tests/web``, so that a test run leaves the tree clean."""
    image = await page.screenshot()
    assert image.startswith(b"\x89PNG")
    if os.environ.get("THREADLINE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (DOCS_SCREENSHOTS / f"{name}.png").write_bytes(image)


async def new_page(browser: Browser, errors: list[str]) -> Page:
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    # A Content-Security-Policy violation (an inline script or style) is logged, not thrown.
    page.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return page


async def fill_account(page: Page, username: str, display_name: str) -> None:
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Email").fill(f"{username}@example.com")
    await page.get_by_label("Display name (optional)").fill(display_name)
    await page.get_by_label("Password").fill(PASSWORD)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page_errors() -> list[str]:
    """Uncaught exceptions of the pages' scripts; the last test checks that there were none."""
    return []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def people(web_stack: Stack, browser: Browser, page_errors: list[str]) -> People:
    """Alice sets Threadline up, Bob registers; Alice creates the conversation and invites Bob by a link,
    which Bob accepts. Screenshots of the setup page and the invite panel are taken on the way."""
    alice = await new_page(browser, page_errors)
    bob = await new_page(browser, page_errors)

    await alice.goto(web_stack.edge_url + "/")
    await expect(alice.get_by_role("heading", name="Set up Threadline")).to_be_visible()
    await fill_account(alice, "alice", "Alice")
    await screenshot(alice, "setup")
    await alice.get_by_role("button", name="Create administrator").click()
    await expect(alice.get_by_role("heading", name="Hello, Alice")).to_be_visible()

    await bob.goto(web_stack.edge_url + "/")
    await expect(bob.get_by_role("heading", name="Sign in")).to_be_visible()
    await screenshot(bob, "sign-in")
    assert await unnamed_controls(bob) == [] and await low_contrast_text(bob) == []
    await bob.get_by_role("button", name="Create an account").click()
    await fill_account(bob, "bob", "Bob")
    await bob.get_by_role("button", name="Create account").click()
    await expect(bob.get_by_role("heading", name="Hello, Bob")).to_be_visible()

    await alice.get_by_role("button", name="New conversation").click()
    await alice.get_by_label("Title").fill(CONVERSATION)
    await alice.get_by_role("button", name="Create", exact=True).click()
    await expect(alice.get_by_role("heading", name=CONVERSATION)).to_be_visible()
    conversation_url = alice.url

    await alice.get_by_role("button", name="Invite people").click()
    await alice.get_by_label("Their email (a note for you)").fill("bob@example.com")
    await alice.get_by_role("button", name="Create invite link").click()
    link = alice.get_by_label("Invite link", exact=True)
    await expect(link).to_have_value(re.compile(r"/#/invite/[A-Za-z0-9_-]{43}$"))
    invite_url = await link.input_value()
    await screenshot(alice, "invite")
    await alice.get_by_role("button", name="Invite people").click()  # close the panel

    await bob.goto(invite_url)
    await bob.get_by_role("button", name="Accept invite").click()
    await expect(bob.get_by_role("heading", name=CONVERSATION)).to_be_visible()
    assert bob.url == conversation_url
    return People(web_stack, alice, bob, conversation_url)
