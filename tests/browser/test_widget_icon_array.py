"""A reply's shares of people (``figures``) are drawn as icon arrays by the widget itself:
100 marks in a 10 by 10 grid, N filled, role="img" named by the text alternative."""

from __future__ import annotations

import json

from chat_widget import ChatWidget
from conftest import Site, screenshot
from playwright.sync_api import Page, Route, expect
from test_widget_accessibility import scan

REDNESS_ALT = "88 out of 100 men who had mesotherapy in one trial: red skin for a few hours after a visit."
HOSTILE_ALT = '7 out of 100 <img src=x onerror="window.__xss=1">: denser hair.'
REPLY = {
    "messages": [
        {
            "id": None,
            "role": "assistant",
            "text": "Mesotherapy: Pain, redness ... \n\n88 out of 100 men who had mesotherapy in one trial: "
            "red skin for a few hours after a visit. The source's own figure: 88% (skincare guide). "
            "Group size: 25 people. Time: 8 weekly visits.",
            "buttons": [],
            "sources": [{"id": "skincare-guide", "title": "A skincare guide", "url": None}],
            "topic": None,
            "red_flag": None,
            "summary_url": None,
            "figures": [
                {"per_100": 88, "label": "88 out of 100: red skin for a few hours after a visit",
                 "alt": REDNESS_ALT},
                {"per_100": 150, "label": "too many", "alt": "150 out of 100"},
                {"per_100": "50", "label": "a string", "alt": "50 out of 100"},
                {"per_100": 7, "label": "<b>7</b> out of 100", "alt": HOSTILE_ALT},
                {"per_100": 0, "label": "none", "alt": ""},
            ],
        }
    ]
}


def widget_count(page: Page, selector: str) -> int:
    return int(page.evaluate(
        "(s) => document.getElementById('meso-chat').shadowRoot.querySelectorAll(s).length", selector))


def test_a_reply_with_figures_shows_an_accessible_icon_array(page: Page, site: Site) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    widget.start(consent=True)

    def stub(route: Route) -> None:
        if route.request.method == "POST":
            route.fulfill(status=200, content_type="application/json", body=json.dumps(REPLY))
        else:
            route.continue_()

    page.route("**/api/v1/conversations/*/messages", stub)
    reply = widget.ask("harms")

    # Only the two figures within the rules are drawn, in order, each named by its alt.
    arrays = reply.locator(".icon-array")
    expect(arrays).to_have_count(2)
    redness = reply.get_by_role("img", name=REDNESS_ALT)
    expect(redness).to_be_visible()
    expect(redness).to_have_attribute("aria-label", REDNESS_ALT)
    expect(redness.locator(".mark")).to_have_count(100)
    expect(redness.locator(".mark.on")).to_have_count(88)
    # The first 88 marks are the filled ones.
    classes = redness.locator(".mark").evaluate_all("(marks) => marks.map((m) => m.className)")
    assert classes == ["mark on"] * 88 + ["mark"] * 12

    # Ten marks a row: the 11th starts a new row under the 1st.
    boxes = redness.locator(".mark").evaluate_all(
        "(marks) => marks.map((m) => { const r = m.getBoundingClientRect(); return [r.x, r.y]; })")
    assert len({round(y) for _, y in boxes}) == 10 and len({round(x) for x, _ in boxes}) == 10
    assert boxes[10][0] == boxes[0][0] and boxes[10][1] > boxes[0][1]

    # The visible caption repeats the name, so screen readers skip it.
    caption = reply.locator(".figure-label").first
    expect(caption).to_have_text("88 out of 100: red skin for a few hours after a visit")
    expect(caption).to_have_attribute("aria-hidden", "true")

    # Markup in a figure is text; no inline style anywhere in the arrays.
    hostile = reply.get_by_role("img", name=HOSTILE_ALT)
    expect(hostile.locator(".mark.on")).to_have_count(7)
    expect(reply.locator(".figure-label").last).to_have_text("<b>7</b> out of 100")
    assert widget_count(page, ".msg img, .msg b, .msg script, .icon-array [style], .icon-array[style]") == 0
    assert page.evaluate("window.__xss") is None

    scan(page, "icon-array")
    screenshot(page, "11-icon-array")
