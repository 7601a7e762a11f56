"""The field-test check: five knowledge questions asked before and after the guided steps.

The questions live in ``knowledge/decision/field_check.yml`` (optional: a knowledge folder
without it has no check). Each question is multiple choice with exactly one right answer,
grounded in knowledge entries: ``entries`` names them, and every id in ``sources`` must be
a source one of those entries cites, so the right answer can be traced to the entry that
says it. ``why`` says, in plain words and with its sources, why the right answer is right
(shown after the second check only, so the first one gives nothing away).

The number of questions is fixed (:data:`QUESTION_COUNT`): a clinic compares the scores of
one month with the next, and the contract (``contract.payloads``) checks the score's range.
Every problem names the file and the question.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Collection, Mapping

import yaml

from bot.kb.decision import parse_date
from contract.payloads import FIELD_CHECK_KNOWLEDGE_MAX

FILE_NAME = "field_check.yml"
QUESTION_COUNT = FIELD_CHECK_KNOWLEDGE_MAX
MIN_ANSWERS, MAX_ANSWERS = 2, 4
MAX_ANSWER_CHARS = 60
"""An answer is a button title: short enough to read at a glance on a phone."""
_ID = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


@dataclass(frozen=True)
class Answer:
    id: str
    text: str
    correct: bool = False


@dataclass(frozen=True)
class CheckQuestion:
    id: str
    text: str
    answers: tuple[Answer, ...]
    entries: tuple[str, ...]  # the knowledge entries the right answer comes from
    sources: tuple[str, ...]  # sources those entries cite for it
    why: str

    @property
    def right(self) -> Answer:
        return next(a for a in self.answers if a.correct)

    def answer(self, answer_id: str) -> Answer | None:
        return next((a for a in self.answers if a.id == answer_id), None)


@dataclass(frozen=True)
class FieldCheck:
    questions: tuple[CheckQuestion, ...]
    reviewed: str  # ISO date
    review_due: str  # ISO date

    def question(self, question_id: str) -> CheckQuestion | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FieldCheck":
        return cls(
            questions=tuple(
                CheckQuestion(
                    id=q["id"], text=q["text"], why=q["why"],
                    answers=tuple(Answer(**a) for a in q["answers"]),
                    entries=tuple(q["entries"]), sources=tuple(q["sources"]),
                )
                for q in data["questions"]
            ),
            reviewed=data["reviewed"],
            review_due=data["review_due"],
        )


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None


def _ids(value: Any) -> list[str] | None:
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    return None


def _answers(raw: Any, fail: Any) -> tuple[Answer, ...]:
    if not isinstance(raw, list) or not MIN_ANSWERS <= len(raw) <= MAX_ANSWERS:
        fail(f"needs {MIN_ANSWERS} to {MAX_ANSWERS} 'answers'")
        return ()
    answers: list[Answer] = []
    for n, item in enumerate(raw):
        aid = item.get("id") if isinstance(item, dict) else None
        at = f"answer '{aid or '#' + str(n + 1)}'"
        if not isinstance(item, dict) or not isinstance(aid, str) or not _ID.match(aid):
            fail(f"{at}: needs an 'id' of lowercase words joined by '-'")
            continue
        extra = sorted(str(k) for k in item if k not in ("id", "text", "correct"))
        if extra:
            fail(f"{at}: unknown field(s) {', '.join(extra)}; known: id, text, correct")
        text = _text(item.get("text"))
        if text is None:
            fail(f"{at}: missing 'text'")
            continue
        if len(text) > MAX_ANSWER_CHARS:
            fail(f"{at}: 'text' is a button: keep it to {MAX_ANSWER_CHARS} characters (it has {len(text)})")
        correct = item.get("correct", False)
        if not isinstance(correct, bool):
            fail(f"{at}: 'correct' must be true or left out")
            continue
        if any(a.id == aid for a in answers):
            fail(f"{at}: duplicate answer id")
            continue
        answers.append(Answer(id=aid, text=text, correct=correct))
    right = sum(a.correct for a in answers)
    if answers and right != 1:
        fail(f"exactly one answer must be 'correct: true' ({right} are)")
    return tuple(answers)


def load_field_check(path: Path, entry_sources: Mapping[str, Collection[str]],
                     problems: list[str]) -> FieldCheck | None:
    """Read and validate ``path``; append each problem to ``problems``.

    ``entry_sources`` maps each known entry id to the source ids it cites. Returns ``None``
    when anything is wrong.
    """
    start = len(problems)

    def fail(message: str, where: str | None = None) -> None:
        problems.append(f"{path}: {where + ': ' if where else ''}{message}")

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fail("file not found")
        return None
    except yaml.YAMLError as exc:
        fail(f"not valid YAML: {exc}")
        return None
    if not isinstance(data, dict):
        fail("must be a mapping")
        return None
    extra = sorted(str(k) for k in data if k not in ("reviewed", "review_due", "questions"))
    if extra:
        fail(f"unknown field(s) {', '.join(extra)}; known: reviewed, review_due, questions")
    reviewed, review_due = parse_date(data.get("reviewed")), parse_date(data.get("review_due"))
    if reviewed is None:
        fail("missing review date ('reviewed: YYYY-MM-DD')")
    if review_due is None:
        fail("missing next review date ('review_due: YYYY-MM-DD')")
    elif reviewed is not None and review_due <= reviewed:
        fail("'review_due' must come after 'reviewed'")
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list) or len(raw_questions) != QUESTION_COUNT:
        fail(f"needs exactly {QUESTION_COUNT} 'questions' (the score is compared month by month)")
        raw_questions = raw_questions if isinstance(raw_questions, list) else []
    questions: list[CheckQuestion] = []
    for n, raw in enumerate(raw_questions):
        qid = raw.get("id") if isinstance(raw, dict) else None
        where = f"question '{qid or '#' + str(n + 1)}'"
        if not isinstance(raw, dict) or not isinstance(qid, str) or not _ID.match(qid):
            fail("needs an 'id' of lowercase words joined by '-'", where)
            continue
        if any(q.id == qid for q in questions):
            fail("duplicate question id", where)
            continue
        begin = len(problems)
        allowed = ("id", "text", "answers", "entries", "sources", "why")
        unknown = sorted(str(k) for k in raw if k not in allowed)
        if unknown:
            fail(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(allowed)}", where)
        text = _text(raw.get("text"))
        if text is None:
            fail("missing 'text'", where)
        elif not text.endswith("?"):
            fail("'text' must be a question (end with '?')", where)
        why = _text(raw.get("why"))
        if why is None:
            fail("missing 'why' (why the right answer is right, with its sources)", where)
        entries = _ids(raw.get("entries"))
        if entries is None:
            fail("needs 'entries': the knowledge entries the right answer comes from", where)
            entries = []
        for eid in entries:
            if eid not in entry_sources:
                fail(f"unknown entry id '{eid}'", where)
        sources = _ids(raw.get("sources"))
        if sources is None:
            fail("needs 'sources': the source ids the right answer comes from", where)
            sources = []
        cited = {sid for eid in entries for sid in entry_sources.get(eid, ())}
        for sid in sources:
            if sid not in cited:
                fail(f"source '{sid}' is not cited by any of its entries ({', '.join(entries)})", where)
        answers = _answers(raw.get("answers"), lambda m: fail(m, where))
        if len(problems) == begin:
            questions.append(CheckQuestion(id=qid, text=text, answers=answers, entries=tuple(entries),
                                           sources=tuple(sources), why=why))
    if len(problems) > start:
        return None
    return FieldCheck(questions=tuple(questions), reviewed=reviewed.isoformat(),
                      review_due=review_due.isoformat())
