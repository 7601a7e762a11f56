"""axe-core scans the main states of the widget: no serious or critical WCAG 2.2 AA violation.

Each scan's full result is saved under results/widget/axe/ for people to read.
"""

from __future__ import annotations

import json
from pathlib import Path

from chat_widget import ChatWidget
from conftest import AXE, SCREENSHOTS, Site
from playwright.sync_api import Page, expect

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
REPORTS = SCREENSHOTS.parent / "axe"


def scan(page: Page, state: str) -> list[dict]:
    """Run axe on the whole page (the widget's open shadow root included)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(Path(AXE).read_text(encoding="utf-8"))  # CDP evaluation: not blocked by CSP
    # axe adds a <style> of its own; the page's CSP rightly blocks it: not the widget's doing.
    result = page.evaluate(
        "(tags) => { const before = (window.__cspViolations || []).slice();"
        " return axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})"
        ".then((r) => { window.__cspViolations = before; return r; }); }",
        TAGS,
    )
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{state}.json").write_text(json.dumps(result["violations"], indent=1), encoding="utf-8")
    serious = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], f"{state}: {serious}"
    return result["violations"]


def test_axe_on_every_main_state(page: Page, site: Site) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    scan(page, "closed")

    widget.open()
    scan(page, "privacy-notice")

    widget.start(consent=True)
    widget.ask("how much does it cost")
    page.locator("#meso-chat details.sources summary").last.click()
    widget.panel.get_by_role("button", name="Contact the clinic").click()
    scan(page, "conversation")

    widget.ask("I have a fever and the treated area is hot and swollen")
    expect(page.locator("#meso-chat .msg-urgent").first).to_be_visible()
    scan(page, "urgent-reply")


def test_axe_dark_theme_on_a_foreign_page(page: Page, site: Site) -> None:
    page.goto(site.host + "/index.html")
    widget = ChatWidget(page)
    expect(widget.panel).to_be_visible()
    widget.panel.locator(".consent-yes").click()
    expect(widget.assistant_messages.first).to_be_visible(timeout=30_000)
    # The foreign page is the test's hostile page, not ours: judge the widget only.
    violations = scan(page, "dark-foreign-page")
    assert all(
        node["target"][0] == "#meso-chat" for v in violations for node in v["nodes"]
        if v["impact"] in ("serious", "critical")
    )


def test_axe_phone(browser, site: Site) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(site.api + "/")
        widget = ChatWidget(page)
        widget.launcher.tap()
        widget.start(consent=True)
        widget.ask("does it hurt")
        scan(page, "phone")
    finally:
        context.close()
