"""The field-test check's questions (knowledge/decision/field_check.yml): the validation
rules, and the shipped questions (five, each with one right answer grounded in the entries
and sources it names, in plain words)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from test_decision import minimal_decision

from bot import paths
from bot.kb.build import validate
from bot.kb.field_check import MAX_ANSWER_CHARS, QUESTION_COUNT, FieldCheck, load_field_check
from bot.kb.loader import KnowledgeError
from bot.kb.model import KnowledgeBase
from contract.payloads import FIELD_CHECK_KNOWLEDGE_MAX

# The entries of tests/kb/conftest.py's minimal knowledge, with the sources they cite.
ENTRY_SOURCES = {"cost-session": ("guide",), "pain-level": ("clinic",)}


def _question(n: int, **over: Any) -> dict[str, Any]:
    question = {
        "id": f"q{n}", "text": f"Question number {n}?",
        "answers": [{"id": "right", "text": "The right one", "correct": True},
                    {"id": "wrong", "text": "The wrong one"}],
        "entries": ["cost-session"], "sources": ["guide"], "why": "The guide says so.",
    }
    question.update(over)
    return question


def minimal_check() -> dict[str, Any]:
    return {"reviewed": "2026-12-05", "review_due": "2027-12-05",
            "questions": [_question(n) for n in range(1, QUESTION_COUNT + 1)]}


def _load(tmp_path: Path, data: Any) -> tuple[FieldCheck | None, list[str]]:
    path = tmp_path / "field_check.yml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    problems: list[str] = []
    return load_field_check(path, ENTRY_SOURCES, problems), problems


def _problems(tmp_path: Path, mutate: Callable[[dict[str, Any]], None]) -> list[str]:
    data = minimal_check()
    mutate(data)
    check, problems = _load(tmp_path, data)
    assert check is None and problems
    assert all(str(tmp_path / "field_check.yml") in p for p in problems), problems
    return problems


def _has(problems: list[str], *parts: str) -> bool:
    return any(all(part in p for part in parts) for p in problems)


# --- the rules ----------------------------------------------------------------------------

def test_the_minimal_check_is_valid(tmp_path: Path) -> None:
    check, problems = _load(tmp_path, minimal_check())
    assert problems == [] and check is not None
    assert QUESTION_COUNT == FIELD_CHECK_KNOWLEDGE_MAX == 5
    assert [q.id for q in check.questions] == ["q1", "q2", "q3", "q4", "q5"]
    assert check.questions[0].right.id == "right" and check.questions[0].answer("nope") is None
    assert (check.reviewed, check.review_due) == ("2026-12-05", "2027-12-05")
    assert FieldCheck.from_dict(json.loads(json.dumps(check.to_dict()))) == check


@pytest.mark.parametrize("count", [4, 6])
def test_exactly_five_questions(tmp_path: Path, count: int) -> None:
    problems = _problems(tmp_path, lambda d: d.update(questions=[_question(n) for n in range(count)]))
    assert _has(problems, "exactly 5 'questions'")


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda q: q["answers"][1].update(correct=True), "exactly one answer must be 'correct: true' (2 are)"),
    (lambda q: q["answers"][0].pop("correct"), "exactly one answer must be 'correct: true' (0 are)"),
    (lambda q: q["answers"][1].update(correct="yes"), "'correct' must be true or left out"),
    (lambda q: q.update(answers=q["answers"][:1]), "needs 2 to 4 'answers'"),
    (lambda q: q["answers"].extend([{"id": f"x{i}", "text": "More"} for i in range(3)]), "needs 2 to 4 'answers'"),
    (lambda q: q["answers"][1].update(id="right"), "duplicate answer id"),
    (lambda q: q["answers"][1].update(text="x" * (MAX_ANSWER_CHARS + 1)), "'text' is a button"),
    (lambda q: q["answers"][1].pop("text"), "answer 'wrong': missing 'text'"),
    (lambda q: q["answers"][1].update(score=1), "unknown field(s) score"),
    (lambda q: q.update(entries=["no-such-entry"]), "unknown entry id 'no-such-entry'"),
    (lambda q: q.pop("entries"), "needs 'entries'"),
    (lambda q: q.update(sources=["clinic"]), "source 'clinic' is not cited by any of its entries"),
    (lambda q: q.update(sources=[]), "needs 'sources'"),
    (lambda q: q.pop("why"), "missing 'why'"),
    (lambda q: q.update(text="Tell me the number of sessions."), "must be a question"),
    (lambda q: q.update(hint="x"), "unknown field(s) hint"),
    (lambda q: q.update(id="Bad Id"), "needs an 'id'"),
])
def test_a_bad_question_is_named_with_its_problem(tmp_path: Path, mutate: Any, expected: str) -> None:
    def change(d: dict[str, Any]) -> None:
        mutate(d["questions"][2])

    problems = _problems(tmp_path, change)
    assert _has(problems, expected), problems
    assert _has(problems, "question 'q3'") or _has(problems, "question 'Bad Id'"), problems


def test_a_right_answer_may_draw_on_several_entries(tmp_path: Path) -> None:
    data = minimal_check()
    data["questions"][0].update(entries=["cost-session", "pain-level"], sources=["guide", "clinic"])
    check, problems = _load(tmp_path, data)
    assert problems == [] and check.questions[0].sources == ("guide", "clinic")


def test_duplicate_question_ids_dates_and_top_level_fields(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["questions"][1]["id"] = "q1"
        d.update(review_due="2026-01-01", extra=True)

    problems = _problems(tmp_path, mutate)
    assert _has(problems, "question 'q1'", "duplicate question id")
    assert _has(problems, "'review_due' must come after 'reviewed'")
    assert _has(problems, "unknown field(s) extra")


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    check, problems = _load(tmp_path, "questions: [unclosed")
    assert check is None and _has(problems, "field_check.yml", "not valid YAML")


# --- through the knowledge base loader ----------------------------------------------------

@pytest.fixture
def knowledge_with(make_knowledge: Callable[..., tuple[Path, Path, Path]]) -> Callable[..., tuple[Path, Path, Path]]:
    """The minimal knowledge with a decision folder, and ``check`` as its field_check.yml."""

    def _make(check: dict[str, Any] | None) -> tuple[Path, Path, Path]:
        knowledge, clinic, rules = make_knowledge()
        folder = knowledge / "decision"
        folder.mkdir()
        for name, content in minimal_decision().items():
            (folder / name).write_text(yaml.safe_dump(content, sort_keys=False))
        if check is not None:
            (folder / "field_check.yml").write_text(yaml.safe_dump(check, sort_keys=False))
        return knowledge, clinic, rules

    return _make


def test_the_loader_validates_the_check_and_keeps_it(knowledge_with: Any) -> None:
    kb = validate(*knowledge_with(minimal_check()))
    assert kb.field_check is not None and len(kb.field_check.questions) == 5
    again = KnowledgeBase.from_dict(json.loads(json.dumps(kb.to_dict())))
    assert again.field_check == kb.field_check


def test_the_check_is_optional(knowledge_with: Any) -> None:
    assert validate(*knowledge_with(None)).field_check is None


def test_a_bad_check_stops_the_build(knowledge_with: Any) -> None:
    check = minimal_check()
    check["questions"][4]["entries"] = ["gone-entry"]
    with pytest.raises(KnowledgeError) as info:
        validate(*knowledge_with(check))
    assert _has(info.value.problems, "field_check.yml", "question 'q5'", "unknown entry id 'gone-entry'")


def test_a_clinic_runs_a_field_test_only_when_it_says_true(make_knowledge: Any, tmp_path: Path) -> None:
    knowledge, clinic, rules = make_knowledge()
    assert validate(knowledge, clinic, rules).clinic.field_check is False
    for value, ok in ((True, True), (False, True), ("yes", False), (1, False)):
        data = yaml.safe_load(clinic.read_text())
        data["field_check"] = value
        clinic.write_text(yaml.safe_dump(data))
        if ok:
            assert validate(knowledge, clinic, rules).clinic.field_check is value
        else:
            with pytest.raises(KnowledgeError, match="'field_check' must be true or false"):
                validate(knowledge, clinic, rules)


# --- the shipped questions ----------------------------------------------------------------

@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return validate(paths.knowledge_dir(), paths.clinic_file(), paths.rules_dir())


@pytest.fixture(scope="module")
def check(kb: KnowledgeBase) -> FieldCheck:
    assert kb.field_check is not None, "knowledge/decision/field_check.yml should load"
    return kb.field_check


def test_the_shipped_check_has_five_grounded_questions(check: FieldCheck, kb: KnowledgeBase) -> None:
    assert len(check.questions) == 5
    for question in check.questions:
        assert sum(a.correct for a in question.answers) == 1, question.id
        for eid in question.entries:
            assert eid in kb.entries, question.id
        cited = {sid for eid in question.entries for sid in kb.entries[eid].sources}
        assert set(question.sources) <= cited, question.id
        # The why names what it rests on: a source by name or the sources' silence.
        assert re.search(r"guide|review|InLiber|clinic|source", question.why), question.id


def test_the_shipped_check_asks_the_brief_s_questions(check: FieldCheck) -> None:
    texts = [q.text for q in check.questions]
    assert "How many sessions do our sources describe for a first course?" in texts
    assert "Do our sources show that mesotherapy works as well as minoxidil?" in texts
    minoxidil = next(q for q in check.questions if q.id == "versus-minoxidil")
    assert minoxidil.right.text.startswith("No") and "evidence-minoxidil-trial" in minoxidil.entries
    sessions = next(q for q in check.questions if q.id == "sessions")
    assert "sessions-how-many" in sessions.entries and "differs" in sessions.right.text


def test_the_shipped_check_gives_no_dose_no_verdict_and_plain_words(check: FieldCheck) -> None:
    textstat = pytest.importorskip("textstat")
    dose = re.compile(r"\d\s*(mg|ml|%|percent)\b|\b(mg|ml)\b", re.I)
    verdict = re.compile(r"\byou should\b|\byou are (not )?(suitable|eligible)\b|\brecommend", re.I)
    for question in check.questions:
        texts = [question.text, question.why, *(a.text for a in question.answers)]
        for text in texts:
            assert not dose.search(text) and not verdict.search(text), (question.id, text)
        assert textstat.flesch_kincaid_grade(question.why) <= 8.0, question.id
        assert textstat.flesch_kincaid_grade(question.text) <= 8.0, question.id
        assert all(len(a.text) <= MAX_ANSWER_CHARS for a in question.answers)


def test_the_shipped_check_rounds_trips_through_kb_json(kb: KnowledgeBase, check: FieldCheck) -> None:
    data = copy.deepcopy(kb.to_dict())
    assert KnowledgeBase.from_dict(json.loads(json.dumps(data))).field_check == check
    data.pop("field_check")
    assert KnowledgeBase.from_dict(data).field_check is None
