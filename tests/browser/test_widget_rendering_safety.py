"""Untrusted text is shown as text: from the patient, and from a reply crafted to attack."""

from __future__ import annotations

import json

from chat_widget import ChatWidget
from conftest import Site, screenshot
from playwright.sync_api import Page, Route, expect

ATTACK_TEXT = (
    'Look <img src=x onerror="window.__xss=1"> here. [Click](javascript:window.__xss=2) '
    "or javascript:window.__xss=3 or JAVASCRIPT:alert(1) or data:text/html,<b>x</b>. "
    "Safe: https://example.org/leaflet."
)
ATTACK_REPLY = {
    "messages": [
        {
            "id": None,
            "role": "assistant",
            "text": ATTACK_TEXT,
            "buttons": [{"title": '<img src=x onerror="window.__xss=4">', "payload": "/greet"}],
            "sources": [
                {"id": "a", "title": "<script>window.__xss=5</script>", "url": "javascript:window.__xss=6"},
                {"id": "b", "title": "A real source", "url": "https://example.org/source"},
            ],
            "topic": None,
            "red_flag": None,
            "summary_url": "javascript:window.__xss=7",
        }
    ]
}


def widget_elements(page: Page, selector: str) -> int:
    return int(
        page.evaluate(
            "(s) => document.getElementById('meso-chat').shadowRoot.querySelectorAll(s).length",
            selector,
        )
    )


def test_patient_text_with_markup_is_shown_as_text(page: Page, site: Site) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    widget.start(consent=True)
    payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    widget.ask(payload)

    expect(widget.patient_messages.last).to_have_text(payload)
    assert page.evaluate("window.__xss") is None
    assert widget_elements(page, ".msg img, .msg script") == 0


def test_a_hostile_reply_is_rendered_inert(page: Page, site: Site) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    widget.start(consent=True)

    def hostile(route: Route) -> None:
        if route.request.method == "POST":
            route.fulfill(status=200, content_type="application/json", body=json.dumps(ATTACK_REPLY))
        else:
            route.continue_()

    page.route("**/api/v1/conversations/*/messages", hostile)
    reply = widget.ask("anything")

    expect(reply).to_contain_text('<img src=x onerror="window.__xss=1">')
    expect(reply).to_contain_text("javascript:window.__xss=3")
    reply.locator("details.sources summary").click()
    expect(reply.locator("details.sources")).to_contain_text("<script>window.__xss=5</script>")
    expect(widget.quick_replies.last).to_have_text('<img src=x onerror="window.__xss=4">')

    hrefs = page.evaluate(
        "() => [...document.getElementById('meso-chat').shadowRoot.querySelectorAll('a')]"
        ".map(a => [a.getAttribute('href'), a.target, a.rel])"
    )
    assert hrefs, "the https links are links"
    for href, target, rel in hrefs:
        assert href.startswith(("http://", "https://")), href
        assert "javascript" not in href.lower()
        assert target == "_blank" and "noopener" in rel
    assert ["https://example.org/leaflet", "_blank"] in [h[:2] for h in hrefs]
    assert ["https://example.org/source", "_blank"] in [h[:2] for h in hrefs]
    assert widget_elements(page, ".msg img, .msg script, .msg b, .quick-replies img") == 0

    # Clicking the text that looks like a link runs nothing.
    reply.get_by_text("javascript:window.__xss=3", exact=False).click()
    assert page.evaluate("window.__xss") is None
    screenshot(page, "07-hostile-reply-inert")
