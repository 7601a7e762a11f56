"""The printed consultation summary: one page on A4 and on US Letter for a typical summary.

The page is rendered by the API's own template (api/templates/summary.html) and styles
(api/static/summary.css, summary-print.css) and printed by Chromium, as a browser's "Print"
or "Save as PDF" does. ``typical_summary.json`` is what the assistant makes after the whole
guided path (3 questions asked, the checklist with two points to raise, the questions for the
clinician, the options, two values, the SURE test), with the real source list.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route

from api import pages
from api.schemas import Summary
from api.settings import PACKAGE_DIR
from api.sources import load_sources

ROOT = Path(__file__).resolve().parents[2]
TYPICAL = Path(__file__).with_name("typical_summary.json")
STATIC = PACKAGE_DIR / "static"


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf))


def summary_html(doc: dict) -> str:
    summary = Summary.model_validate(doc)
    return pages.render("summary.html", **pages.summary_context(summary, load_sources(ROOT / "knowledge"), {}))


def print_pdf(browser: Browser, html: str, paper: str) -> bytes:
    context = browser.new_context()
    try:
        page = context.new_page()

        def static(route: Route) -> None:
            name = route.request.url.rsplit("/static/", 1)[1]
            route.fulfill(path=str(STATIC / name), content_type="text/css" if name.endswith(".css") else None)

        page.route("**/static/**", static)
        page.route("http://summary.test/", lambda route: route.fulfill(body=html, content_type="text/html"))
        page.goto("http://summary.test/")
        return page.pdf(format=paper)
    finally:
        context.close()


@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_a_typical_summary_prints_on_one_page(browser: Browser, paper: str) -> None:
    doc = json.loads(TYPICAL.read_text(encoding="utf-8"))
    html = summary_html(doc)
    assert "Raise these first" in html and "Questions to ask the clinician" in html
    assert page_count(print_pdf(browser, html, paper)) == 1


def test_a_long_summary_still_prints_whole_on_more_pages(browser: Browser) -> None:
    """The one-page layout never cuts anything off: a summary twice as long takes two pages."""
    doc = json.loads(TYPICAL.read_text(encoding="utf-8"))
    doc["sections"] = doc["sections"] + doc["sections"] + doc["sections"]
    pdf = print_pdf(browser, summary_html(doc), "A4")
    assert page_count(pdf) >= 2
