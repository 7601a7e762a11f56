"""Failures the patient must get through: a 503, a slow reply, the API stopped and restarted."""

from __future__ import annotations

import json
import re

from chat_widget import ChatWidget
from conftest import Site, screenshot
from playwright.sync_api import BrowserContext, Page, Route, expect

SLOW_FETCH = """
(() => {
  const realFetch = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const url = typeof input === 'string' ? input : input.url;
    const slow = /\\/messages$/.test(url) && init && init.method === 'POST';
    return slow ? new Promise((r) => setTimeout(r, 2500)).then(() => realFetch(input, init))
                : realFetch(input, init);
  };
})();
"""


def test_a_503_offers_an_inline_retry_and_keeps_the_text(page: Page, site: Site) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    widget.start(consent=True)
    detail = "The assistant is not available right now. Please try again in a minute."
    calls: list[str] = []

    def unavailable_once(route: Route) -> None:
        if route.request.method == "POST" and not calls:
            calls.append(route.request.post_data or "")
            route.fulfill(status=503, content_type="application/json",
                          body=json.dumps({"detail": detail}))
        else:
            route.continue_()

    page.route("**/api/v1/conversations/*/messages", unavailable_once)
    before = widget.assistant_messages.count()
    widget.input.fill("how long does a session take")
    widget.send_button.click()

    failed = page.locator("#meso-chat .msg-failed")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("how long does a session take")
    expect(page.locator("#meso-chat [role=alert].error")).to_contain_text("not available right now")
    screenshot(page, "10-inline-retry")

    failed.get_by_role("button", name="Retry").click()
    widget.wait_for_reply(before)
    expect(page.locator("#meso-chat .msg-failed")).to_have_count(0)
    expect(widget.patient_messages.filter(has_text="how long does a session take")).to_have_count(1)
    # The retry is the same message (same client id), so the server cannot store it twice.
    first = json.loads(calls[0])
    assert re.fullmatch(r"[A-Za-z0-9_-]{8,64}", first["client_id"])


def test_a_slow_reply_never_freezes_the_page(context: BrowserContext, page: Page, site: Site) -> None:
    context.add_init_script(SLOW_FETCH)
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    widget.start(consent=True)

    before = widget.assistant_messages.count()
    widget.input.fill("what are the side effects")
    widget.send_button.click()
    expect(widget.typing).to_be_visible()
    expect(widget.typing).to_contain_text("The assistant is typing")
    # While waiting: the person can type the next question and use the header.
    widget.input.fill("and how much does it cost")
    expect(widget.input).to_have_value("and how much does it cost")
    widget.panel.get_by_role("button", name="Contact the clinic").click()
    expect(widget.panel).to_contain_text("Request a callback")
    screenshot(page, "11-typing-indicator")
    widget.wait_for_reply(before)
    expect(widget.input).to_have_value("and how much does it cost")


def test_api_stopped_and_restarted_mid_conversation(page: Page, site: Site) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    widget.start(consent=True)
    widget.ask("what is mesotherapy")

    site.services.stop_one(2)  # the API
    try:
        widget.input.fill("does it hurt")
        widget.send_button.click()
        expect(widget.offline_banner).to_be_visible(timeout=40_000)
        expect(widget.offline_banner).to_contain_text("Can't reach the assistant")
        expect(widget.offline_banner).to_contain_text("If it is urgent, call")
        failed = page.locator("#meso-chat .msg-failed")
        expect(failed).to_contain_text("does it hurt")
        screenshot(page, "12-api-down")
    finally:
        site.services.start_one(2)

    # It notices by itself that the API is back.
    expect(widget.offline_banner).to_be_hidden(timeout=30_000)
    before = widget.assistant_messages.count()
    page.locator("#meso-chat .msg-failed").get_by_role("button", name="Retry").click()
    widget.wait_for_reply(before)
    expect(page.locator("#meso-chat .msg-failed")).to_have_count(0)
    expect(widget.patient_messages.filter(has_text="does it hurt")).to_have_count(1)
