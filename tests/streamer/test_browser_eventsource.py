"""A browser-grade check (issue 5): headless Chromium's own ``EventSource``, authenticated by the session
cookie, receives the stream and, after the server drops the connection (the streamer restarts), reconnects
by itself after ``retry:`` with ``Last-Event-ID`` and misses nothing.

Chromium is Debian's package (``/usr/bin/chromium``), installed by ``python3 dev.py test`` when missing;
Playwright for Python drives it with ``executable_path``.
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, async_playwright

from tests.support.api import Api
from tests.support.conversations import create_conversation
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e
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
DURABLE_TYPES = ["thread.new", "message.created", "thread.activity", "unread.update", "membership.changed"]
PAGE = """<!doctype html><html><body><script>
window.received = []; window.opens = 0;
const source = new EventSource("/api/stream/conversations/%s");
source.onopen = () => { window.opens += 1; };
for (const type of %s) {
  source.addEventListener(type, (event) => window.received.push(Number(event.lastEventId)));
}
</script></body></html>"""


async def received(page: Page) -> list[int]:
    ids: list[int] = await page.evaluate("window.received")
    return ids


async def wait_for_count(page: Page, count: int, timeout: float) -> list[int]:
    async with asyncio.timeout(timeout):
        while len(ids := await received(page)) < count:
            await asyncio.sleep(0.05)
    return ids


@pytest.mark.timeout(120)
async def test_chromium_eventsource_resumes_by_itself_without_gaps(stack: Stack, api: Api) -> None:
    alice = await api.persona("alice")
    conversation = await create_conversation(api, alice, is_group=True)
    streamer = stack.processes["streamer"]
    page_url = f"{streamer.url}/browser-test.html"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            await context.add_cookies([{"name": "SESSION_ID", "value": alice.token, "url": streamer.url}])
            page = await context.new_page()
            await page.route(
                page_url,
                lambda route: route.fulfill(
                    content_type="text/html", body=PAGE % (conversation, DURABLE_TYPES)
                ),
            )
            await page.goto(page_url)
            async with asyncio.timeout(10):
                while await page.evaluate("window.opens") < 1:
                    await asyncio.sleep(0.05)
            for text in ("one", "two"):
                assert (
                    await api.post(f"/api/threads/{conversation}/root", alice, json={"content": text})
                ).status_code == 201
            before = await wait_for_count(page, 6, 10)

            streamer.stop()  # the server drops the connection
            for text in ("three", "four"):
                await api.post(f"/api/threads/{conversation}/root", alice, json={"content": text})
            streamer.start()
            await asyncio.to_thread(streamer.wait_ready, 30)
            after = await wait_for_count(page, 12, 30)
            opens = await page.evaluate("window.opens")
        finally:
            await browser.close()

    assert before == [1, 2, 3, 4, 5, 6]
    assert after == list(range(1, 13)), "every event once, in order, across the reconnect"
    assert opens >= 2, "the browser reconnected by itself"
