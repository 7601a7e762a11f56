"""A patient on the demo clinic page: consent, question, sources, quick reply, feedback,
reload, another page of the site, restart; and the same without consent."""

from __future__ import annotations

import json
import re
import sqlite3

import httpx
from chat_widget import ChatWidget
from conftest import Site, Traffic, screenshot
from playwright.sync_api import Page, expect

QUESTION = "how much does mesotherapy cost"


def stored_messages(site: Site, conversation_id: str) -> int:
    with sqlite3.connect(site.var_dir / "meso.db") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM messages WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
    return int(count)


def test_demo_page_is_a_clinic_page_with_one_script_tag(page: Page, site: Site) -> None:
    response = page.goto(site.api + "/")
    assert response is not None and response.ok
    html = response.text()
    scripts = re.findall(r"<script\b[^>]*>", html, flags=re.I)
    assert len(scripts) == 1 and 'src="/widget/widget.js"' in scripts[0]
    assert "<style" not in html.lower() and " style=" not in html.lower()

    widget = ChatWidget(page)
    expect(widget.launcher).to_be_visible()
    expect(widget.launcher).to_have_attribute("aria-expanded", "false")
    screenshot(page, "01-demo-page-closed")


def test_consent_question_sources_quick_reply_feedback(
    page: Page, site: Site, traffic: Traffic
) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    widget.open()

    # Before the first message: who, not advice, not for emergencies, privacy, a choice.
    panel_text = widget.panel.inner_text()
    assert "Example Hair Clinic" in panel_text
    assert re.search(r"not medical advice", panel_text, re.I)
    assert re.search(r"emergenc", panel_text, re.I)
    assert re.search(r"privacy", panel_text, re.I)
    screenshot(page, "02-privacy-notice-and-consent")
    assert traffic.posts("/api/v1/conversations") == [], "nothing is sent before consent"
    assert widget.storage()["session"] == {}

    page.get_by_role("button", name="Agree and start").click()
    expect(widget.assistant_messages.first).to_be_visible(timeout=30_000)
    assert len(traffic.posts("/api/v1/conversations")) == 1
    expect(widget.quick_replies.first).to_be_visible()
    # Every control has the accessible name the patient sees.
    expect(page.get_by_role("textbox", name="Your message")).to_be_enabled()
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()

    answer = widget.ask(QUESTION)
    expect(answer).to_contain_text(re.compile(r"£|cost|price", re.I))
    sources = widget.page.locator("#meso-chat .msg-assistant details.sources").last
    expect(sources.locator("summary")).to_have_text(re.compile(r"Sources \(\d+\)"))
    expect(sources.locator("li").first).to_be_hidden()
    sources.locator("summary").click()
    expect(sources.locator("li").first).to_be_visible()
    links = sources.locator("a")
    for i in range(links.count()):
        assert links.nth(i).get_attribute("href", timeout=1000).startswith(("http://", "https://"))
        assert links.nth(i).get_attribute("target") == "_blank"
        assert "noopener" in (links.nth(i).get_attribute("rel") or "")
    screenshot(page, "03-answer-with-sources")

    # Rate the answer: the rating reaches the stored transcript for staff.
    rated = widget.assistant_messages.last
    helpful = rated.get_by_role("button", name="Helpful", exact=True)
    helpful.click()
    expect(helpful).to_have_attribute("aria-pressed", "true")
    conversation_id = widget.conversation_id()
    history = httpx.get(
        f"{site.api}/api/v1/conversations/{conversation_id}/messages",
        headers={"Authorization": f"Bearer {widget.token()}"},
    ).json()
    assert [m["feedback"] for m in history["messages"] if m["feedback"]] == ["up"]

    # A quick reply: its title shows as the patient's message, and the assistant answers.
    title = widget.quick_replies.first.inner_text().strip()
    reply = widget.press_quick_reply(title)
    expect(widget.patient_messages.last).to_have_text(title)
    expect(reply).not_to_be_empty()
    screenshot(page, "04-quick-reply")

    assert stored_messages(site, conversation_id) >= 6


def test_reload_and_another_page_keep_the_conversation(page: Page, site: Site) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    widget.start(consent=True)
    widget.ask(QUESTION)
    shown = widget.page.locator("#meso-chat .msg").all_inner_texts()

    page.reload()
    if not widget.panel.is_visible():
        widget.open()
    expect(widget.page.locator("#meso-chat .msg")).to_have_count(len(shown))
    assert widget.page.locator("#meso-chat .msg").all_inner_texts() == shown

    page.get_by_role("link", name=re.compile("treatments", re.I)).first.click()
    page.wait_for_url("**/demo/treatments.html")
    if not widget.panel.is_visible():
        widget.open()
    expect(widget.page.locator("#meso-chat .msg")).to_have_count(len(shown))
    screenshot(page, "05-after-navigation")

    # The browser keeps the id only: no message text in any storage.
    storage = json.dumps(widget.storage())
    assert QUESTION not in storage and "mesotherapy" not in storage.lower()
    widget.ask("is it painful")
    expect(widget.page.locator("#meso-chat .msg")).not_to_have_count(len(shown))


def test_restart_starts_over_with_the_privacy_notice(page: Page, site: Site) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    widget.start(consent=True)
    first_id = widget.conversation_id()

    widget.panel.get_by_role("button", name="Restart").click()
    widget.panel.get_by_role("button", name="Yes, start again").click()
    expect(page.get_by_role("button", name="Agree and start")).to_be_visible()
    expect(widget.assistant_messages).to_have_count(0)
    assert widget.storage()["session"] == {}

    widget.start(consent=True)
    assert widget.conversation_id() != first_id


def test_the_patient_deletes_the_chat_after_confirming(page: Page, site: Site) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    expect(widget.panel.get_by_role("button", name="Delete this chat")).to_have_count(0)
    widget.start(consent=True)
    widget.ask(QUESTION)
    conversation_id, token = widget.conversation_id(), widget.token()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))

    delete = widget.panel.get_by_role("button", name="Delete this chat")
    delete.click()
    expect(delete).to_have_attribute("aria-expanded", "true")
    widget.panel.get_by_role("button", name="Cancel").click()
    assert stored_messages(site, conversation_id) > 0, "cancel deletes nothing"

    delete.click()
    widget.panel.get_by_role("button", name="Yes, delete it").click()
    expect(widget.panel).to_contain_text("Your chat was deleted.")
    expect(page.get_by_role("button", name="Agree and start")).to_be_visible()
    assert widget.storage()["session"] == {}
    assert stored_messages(site, conversation_id) == 0
    gone = httpx.get(
        f"{site.api}/api/v1/conversations/{conversation_id}/messages",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert gone.status_code == 404
    # The token went only in a header, never in an address.
    assert urls and not any(token in url for url in urls)


def test_without_consent_the_chat_works_and_nothing_is_kept(page: Page, site: Site) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    widget.start(consent=False)
    expect(widget.panel).to_contain_text(re.compile(r"not (being )?saved", re.I))
    widget.ask(QUESTION)
    # No ratings without a stored transcript.
    expect(widget.assistant_messages.last.get_by_role("button", name="Helpful")).to_have_count(0)
    conversation_id = widget.conversation_id()
    assert stored_messages(site, conversation_id) == 0
    screenshot(page, "06-without-consent")

    # While the assistant's working copy lasts, a reload still shows the conversation.
    count = widget.page.locator("#meso-chat .msg").count()
    page.reload()
    if not widget.panel.is_visible():
        widget.open()
    expect(widget.page.locator("#meso-chat .msg")).to_have_count(count)
