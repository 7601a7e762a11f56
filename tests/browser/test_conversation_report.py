"""The conversation-test report in a real browser: failures first and open, readable, accessible.

A small run against the browser tests' stack, with one deliberately wrong assertion; the
page is screenshotted to ``results/conversations/report.png`` for people to look at.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, Site
from playwright.sync_api import Page
from test_widget_accessibility import scan

SCREENSHOT = ROOT / "results" / "conversations" / "report.png"

SUITE = """
test_cases:
  - test_case: cost then decide
    tags: [cost, guided]
    steps:
      - user: how much is one session
        assertions:
          - topic: cost
          - has_sources: true
          - red_flag: none
  - test_case: a deliberately wrong expectation
    tags: [pain]
    steps:
      - user: will it hurt a lot
        assertions:
          - topic: pain
          - entry: cost-per-session
          - text_contains: ["no needles at all"]
"""


def test_the_report_shows_the_failure_first_beside_what_came_back(
        page: Page, site: Site, tmp_path: Path) -> None:
    suite, html = tmp_path / "suite.yml", tmp_path / "report.html"
    suite.write_text(SUITE, encoding="utf-8")
    env = {**os.environ, "MESO_TEST_KEY": site.services.env["MESO_TEST_KEY"]}
    done = subprocess.run(
        [sys.executable, "-m", "convtest", str(suite), "--url", site.api, "--html", str(html),
         "--junit", str(tmp_path / "junit.xml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr

    page.goto(html.as_uri())

    cases = page.locator("details.case")
    assert cases.count() == 2
    first = cases.nth(0)
    assert first.locator(".name").inner_text() == "a deliberately wrong expectation"
    assert first.get_attribute("open") is not None, "a failure is open"
    assert cases.nth(1).get_attribute("open") is None, "a pass is folded"
    failed_rows = first.locator("tr.fail")
    assert failed_rows.count() == 2
    assert "entry cost-per-session" in failed_rows.nth(0).inner_text()
    assert "entry pain-" in failed_rows.nth(0).inner_text(), "what came back is beside it"
    assert first.locator(".bubble.patient").inner_text().endswith("will it hurt a lot")
    answer = first.locator(".bubble.bot", has_text="topic pain")
    assert answer.locator(".chips").is_visible(), "where the answer came from is shown"
    assert "source " in answer.inner_text()
    assert page.locator(".pill.failed").inner_text() == "1 failed"
    scan(page, "conversation-report")  # fails on any serious or critical violation
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
