"""``python -m convtest`` against a running deployment (the real stack), as a tester runs it.

A deliberately wrong assertion must fail the run, and the reports must show what was
expected beside what came back; what the deployment cannot give is "not run", never passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

from bot.paths import REPO_ROOT

SUITE = """
fixtures:
  - priced:
      clinic: {name: Fixture Clinic, price_per_session: 275, currency: GBP}
test_cases:
  - test_case: right about pain
    tags: [pain]
    steps:
      - user: does it hurt much
        assertions:
          - topic: pain
          - has_sources: true
          - intent: ask_pain
          - red_flag: none
  - test_case: wrong on purpose
    tags: [pain]
    steps:
      - user: does it hurt much
        assertions:
          - topic: cost
          - text_contains: ["a zebra is not in this answer"]
  - test_case: needs its own clinic
    tags: [cost]
    fixtures: [priced]
    steps:
      - user: how much is one session
        assertions:
          - text_contains: ["275"]
"""


def _run(tmp_path: Path, url: str, key: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    suite = tmp_path / "suite.yml"
    suite.write_text(SUITE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MESO_TEST_KEY"}
    if key is not None:
        env["MESO_TEST_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "convtest", str(suite), "--url", url,
         "--html", str(tmp_path / "report.html"), "--junit", str(tmp_path / "junit.xml"), *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_a_wrong_assertion_fails_the_run_and_the_reports_show_the_difference(
        tmp_path: Path, stack: dict[str, str]) -> None:
    done = _run(tmp_path, stack["MESO_API_URL"], stack["MESO_TEST_KEY"])

    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED: wrong on purpose" in done.stdout
    assert "expected: topic cost" in done.stdout and "got:      topic pain" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "conversations: 1 passed, 1 failed"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.index('id="wrong on purpose"') < page.index('id="right about pain"')
    assert "missing a zebra is not in this answer in:" in page
    assert "intent <b>ask_pain</b>" in page, "each turn shows what the assistant understood"
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "1")
    skipped = root.find(".//testcase[@name='needs its own clinic']/skipped")
    assert skipped is not None and "clinic fixture 'priced'" in skipped.get("message", "")


def test_without_the_test_key_what_needs_it_is_not_run(tmp_path: Path, stack: dict[str, str]) -> None:
    done = _run(tmp_path, stack["MESO_API_URL"], None, "--name", "right about pain")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "NOT RUN: right about pain" in done.stdout
    assert "MESO_TEST_KEY" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "conversations: 0 passed, 0 failed"


def test_a_mistake_in_a_file_is_named_before_anything_runs(tmp_path: Path, stack: dict[str, str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("test_cases:\n  - test_case: typo\n    steps:\n      - user: hi\n"
                   "        assertions:\n          - topic: costs\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "convtest", str(bad), "--url", stack["MESO_API_URL"]],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

    assert done.returncode == 2
    assert f"{bad}:2: test 'typo': step 1 (line 4): assertion 'topic': unknown topic 'costs'" \
        in done.stderr
    assert "did you mean cost?" in done.stderr


def test_record_writes_a_draft_beside_the_file_that_runs_green(
        tmp_path: Path, stack: dict[str, str]) -> None:
    (tmp_path / "_fixtures.yml").write_text(
        "fixtures:\n  - no_consent:\n      consent: false\n", encoding="utf-8")
    new = tmp_path / "new.yml"
    new.write_text("test_cases:\n  - test_case: to record\n    tags: [draft]\n"
                   "    fixtures: [no_consent]\n    steps:\n      - user: what is mesotherapy\n"
                   "      - user: help me decide\n", encoding="utf-8")
    env = {**os.environ, "MESO_TEST_KEY": stack["MESO_TEST_KEY"]}
    url = stack["MESO_API_URL"]

    recorded = subprocess.run(
        [sys.executable, "-m", "convtest", str(new), "--url", url, "--record"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    draft = tmp_path / "new.draft.yml"
    replayed = subprocess.run(
        [sys.executable, "-m", "convtest", str(draft), "--url", url,
         "--html", str(tmp_path / "r.html"), "--junit", str(tmp_path / "j.xml")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)

    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    text = draft.read_text(encoding="utf-8")
    assert text.startswith("# Recorded from ")
    assert "fixtures: [no_consent]" in text
    assert "- topic: what_is" in text and "- intent: decision_help" in text
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout.strip().splitlines()[-1] == "conversations: 1 passed, 0 failed"
