"""Reading conversation-test files: every mistake named by file, test and step, before a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from convtest import catalog
from convtest.spec import Catalog, FormatError, load, read_file

CATALOG = Catalog(
    topics=frozenset({"cost", "pain"}),
    entries=frozenset({"cost-per-session"}),
    sources=frozenset({"hairloss-guide", "inliber"}),
    intents=frozenset({"ask_cost"}),
    responses=frozenset({"utter_greet"}),
    actions=frozenset({"action_answer_question"}),
    slots=frozenset({"topic"}),
    clinic_fields=frozenset({"name", "price_per_session", "currency"}),
)

GOOD = """
fixtures:
  - no_consent:
      consent: false
  - priced:
      clinic: {name: Test Clinic, price_per_session: 250}
metadata:
  - french:
      language: fr-FR
test_cases:
  - test_case: cost question
    tags: [cost]
    fixtures: [no_consent, priced]
    metadata: french
    no_reply:
      contains: [mg/ml]
      matches: ['\\bdose\\b']
    steps:
      - utter: utter_greet
      - user: how much is it
        assertions:
          - intent: ask_cost
          - min_confidence: 0.5
          - topic: cost
          - entry: cost-per-session
          - sources: [hairloss-guide]
          - red_flag: none
          - text_contains: "250"
      - bot: Exact text.
      - press: Help me decide
      - slot_was_set: [topic, {topic: cost}]
"""


def _write(tmp_path: Path, text: str, name: str = "case.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_reads_into_cases_with_fixtures_applied(tmp_path: Path) -> None:
    cases, problems = read_file(_write(tmp_path, GOOD), CATALOG)

    assert problems == []
    (case,) = cases
    assert case.consent is False
    assert case.clinic == {"name": "Test Clinic", "price_per_session": 250}
    assert case.clinic_fixture == "priced"
    assert case.headers == {"Accept-Language": "fr-FR"}
    assert case.no_reply_contains == ["mg/ml"]
    assert [s.kind for s in case.steps] == ["utter", "user", "bot", "press", "slot_was_set"]
    assert case.steps[1].assertions[-1].value == ["250"]
    assert case.steps[4].value == [("topic", None, False), ("topic", "cost", True)]
    assert case.needs_understanding


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("- user: hi\n        assertions:\n          - topik: cost",
         "step 1 (line 5): assertion 'topik': unknown assertion; did you mean topic?"),
        ("- user: hi\n        assertions:\n          - sources: [hairlos-guide]",
         "unknown source 'hairlos-guide'; did you mean hairloss-guide?"),
        ("- user: hi\n        assertions:\n          - red_flag: urgent",
         "needs one of prompt, same_day, emergency, crisis or none"),
        ("- user: hi\n        assertions:\n          - min_confidence: 2",
         "needs a number from 0 to 1"),
        ("- user: hi\n        assertions:\n          - text_matches: '(unclosed'",
         "not a valid regular expression"),
        ("- user: hi\n      - utter: utter_nope", "step 2 (line 6): unknown response 'utter_nope'"),
        ("- user: ''", "'user' needs a non-empty text"),
        ("- user: hi\n        press: Yes", "needs exactly one of"),
        ("- bot: hello", "needs at least one 'user' or 'press' step"),
        ("- bot: hi\n        assertions: []\n      - user: x", "only 'user' and 'press' steps carry assertions"),
    ],
)
def test_mistakes_name_the_file_test_and_step(tmp_path: Path, step: str, expected: str) -> None:
    text = f"test_cases:\n  - test_case: broken\n    tags: [x]\n    steps:\n      {step}\n"
    path = _write(tmp_path, text)

    _, problems = read_file(path, CATALOG)

    assert problems, "the mistake must be found"
    assert any(expected in p for p in problems), problems
    assert all(p.startswith(f"{path}:2: test 'broken'") for p in problems), problems


def test_unknown_fixture_and_metadata_and_clinic_field(tmp_path: Path) -> None:
    text = """
fixtures:
  - odd_clinic:
      clinic: {name: X, price_per_sesion: 3}
test_cases:
  - test_case: t
    fixtures: [missing]
    metadata: nowhere
    steps:
      - user: hi
"""
    _, problems = read_file(_write(tmp_path, text), CATALOG)

    joined = "\n".join(problems)
    assert "fixture 'odd_clinic': unknown clinic field(s) price_per_sesion" in joined
    assert "unknown fixture 'missing'" in joined
    assert "unknown metadata 'nowhere'" in joined


def test_names_must_be_unique_across_files_and_every_file_is_reported(tmp_path: Path) -> None:
    one = _write(tmp_path, "test_cases:\n  - test_case: same\n    steps:\n      - user: a\n", "a.yml")
    _write(tmp_path, "test_cases:\n  - test_case: same\n    steps:\n      - user: b\n", "b.yml")
    _write(tmp_path, "test_cases: [\n", "c.yml")
    _write(tmp_path, "ignored: true\n", "_helpers.yml")
    _write(tmp_path, "not: collected\n", "x.draft.yml")

    with pytest.raises(FormatError) as caught:
        load([tmp_path], CATALOG)

    problems = caught.value.problems
    assert any("'same': the name is already used in " + str(one) in p for p in problems)
    assert any(p.startswith(f"{tmp_path / 'c.yml'}: not valid YAML") for p in problems)
    assert len(problems) == 2, "files starting with _ and drafts are not collected"


def test_the_shipped_suite_reads_without_a_problem() -> None:
    cases = load([catalog.DEFAULT_SUITE], catalog.build())

    assert len(cases) >= 80
    assert all(case.tags for case in cases), "every conversation is tagged"


def test_the_catalog_knows_the_projects_ids() -> None:
    known = catalog.build()

    assert {"cost", "pain", "about"} <= known.topics
    assert "cost-per-session" in known.entries
    assert "hairloss-guide" in known.sources
    assert "ask_cost" in known.intents
    assert "action_listen" in known.actions
    assert "price_per_session" in known.clinic_fields


def test_shared_fixtures_serve_every_file_below_and_a_clash_is_a_mistake(tmp_path: Path) -> None:
    (tmp_path / "_fixtures.yml").write_text(
        "fixtures:\n  - priced:\n      clinic: {name: Shared, price_per_session: 99}\n"
        "metadata:\n  - phone:\n      user_agent: Mobile\n", encoding="utf-8")
    sub = tmp_path / "cost"
    sub.mkdir()
    uses = _write(sub, "test_cases:\n  - test_case: a\n    fixtures: [priced]\n    metadata: phone\n"
                       "    steps: [{user: hi}]\n", "uses.yml")
    clash = _write(sub, "fixtures:\n  - priced:\n      consent: false\n"
                        "test_cases:\n  - test_case: b\n    steps: [{user: hi}]\n", "clash.yml")

    (case,), problems = read_file(uses, CATALOG)
    _, clash_problems = read_file(clash, CATALOG)

    assert problems == []
    assert case.clinic == {"name": "Shared", "price_per_session": 99}
    assert case.headers == {"User-Agent": "Mobile"}
    assert clash_problems == [f"{clash}: fixture 'priced' is also defined in a _fixtures.yml: rename one"]
