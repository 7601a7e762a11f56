""""Questions we could not answer": the patient messages Rasa fell back on or understood with
low confidence, grouped by similar wording so staff see which knowledge is missing.

No model: each text becomes a set of normalised words (lower case, no punctuation, a small
stop-word list dropped, plural ``s``, ``-ing`` and ``-ed`` stripped); a message joins the
group whose first message's words have a Jaccard similarity of at least
:data:`SIMILARITY` with its own (the most similar group; on a tie the older one), else it
starts a group. Messages are taken oldest first, so the result does not depend on the
database's row order. Candidate groups are found through an index of each group's rarest
words (prefix filtering), which finds every group that can reach the threshold without
comparing each message with every group.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import CallbackRequest, Message
from api.staff.inbox_query import FALLBACK_INTENT, LOW_CONFIDENCE
from api.staff.personal import mask_text
from api.staff.visibility import MESSAGE_SHOWN

SIMILARITY = 0.5
"""The Jaccard similarity of word sets from which two questions count as the same."""
MAX_EXAMPLES = 5
"""Other wordings shown per group, besides its example."""
MAX_LINKS = 10
"""Conversations linked per group (the newest)."""

STOP_WORDS = frozenset(
    """
    a about am an and any are as at be been being but by can could did do does doing for
    from had has have having he her him his how i if im in into is it its itd ive just me
    my of on or our please she should so some than that the their them then there these
    they this those to too us was we were what when where which who whom why will with
    would you your yours hi hello hey thanks thank ok okay
    """.split()
)
"""Words too common to tell two questions apart (question words included: "how much does
it cost" and "what does it cost" ask the same)."""

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def _stem(word: str) -> str:
    """A light English stemmer: ``sessions`` -> ``session``, ``hurting`` -> ``hurt``,
    ``treated`` -> ``treat``."""
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> frozenset[str]:
    """The normalised word set of ``text``; when every word is a stop word, all its words
    (so "how is it?" still groups with its repeats), and for text without words, the text."""
    raw = _WORD.findall(text.lower().replace("'", ""))
    kept = {_stem(w) for w in raw if w not in STOP_WORDS}
    if kept:
        return frozenset(kept)
    if raw:
        return frozenset(_stem(w) for w in raw)
    return frozenset({text.strip().lower()})


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _prefix_length(size: int, threshold: float) -> int:
    """How many of a set's rarest words must be indexed so that any set with a Jaccard
    similarity of at least ``threshold`` shares one of them."""
    return size - math.ceil(threshold * size - 1e-9) + 1


@dataclass(frozen=True)
class Question:
    """One patient message that was not understood well."""

    conversation_id: str
    seq: int
    text: str
    at: datetime


@dataclass
class QuestionGroup:
    """Similar questions: how many, how they were put, when, and in which conversations."""

    words: frozenset[str]
    """The word set of the group's first question (what others are compared with)."""
    questions: list[Question] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.questions)

    @property
    def first_seen(self) -> datetime:
        return min(q.at for q in self.questions)

    @property
    def last_seen(self) -> datetime:
        return max(q.at for q in self.questions)

    def wordings(self) -> list[Question]:
        """A question for each distinct wording (ignoring case and spacing), the most
        frequent wording first, then the oldest."""
        counts: Counter[str] = Counter()
        first: dict[str, Question] = {}
        for question in self.questions:
            key = " ".join(question.text.lower().split())
            counts[key] += 1
            first.setdefault(key, question)
        order = sorted(counts, key=lambda k: -counts[k])  # stable: oldest first on a tie
        return [first[key] for key in order]

    @property
    def example(self) -> Question:
        return self.wordings()[0]

    @property
    def other_examples(self) -> list[Question]:
        return self.wordings()[1 : 1 + MAX_EXAMPLES]

    def conversation_ids(self) -> list[str]:
        """Each conversation once, the one with the newest question first."""
        seen: dict[str, datetime] = {}
        for question in self.questions:
            seen[question.conversation_id] = max(
                question.at, seen.get(question.conversation_id, question.at)
            )
        return sorted(seen, key=lambda cid: (-seen[cid].timestamp(), cid))


def group_questions(
    questions: Sequence[Question], threshold: float = SIMILARITY
) -> list[QuestionGroup]:
    """Group ``questions`` by similar wording; the largest groups first (then the most
    recently seen, then the example's wording)."""
    ordered = sorted(questions, key=lambda q: (q.at, q.conversation_id, q.seq))
    sets = [words(q.text) for q in ordered]
    frequency: Counter[str] = Counter(w for s in sets for w in s)

    def rarest_first(word_set: frozenset[str]) -> list[str]:
        return sorted(word_set, key=lambda w: (frequency[w], w))

    groups: list[QuestionGroup] = []
    index: dict[tuple[str, int], list[int]] = {}
    """(word, size of the group's word set) -> the groups with that word in their prefix."""
    for question, word_set in zip(ordered, sets, strict=True):
        size = len(word_set)
        prefix = rarest_first(word_set)[: _prefix_length(size, threshold)]
        # Size filter: a set of another size than these cannot reach the threshold.
        sizes = range(math.ceil(threshold * size - 1e-9), math.floor(size / threshold + 1e-9) + 1)
        candidates = sorted({g for w in prefix for n in sizes for g in index.get((w, n), ())})
        best, best_score = None, threshold
        for number in candidates:
            other = groups[number].words
            shared = len(word_set & other)
            score = shared / (size + len(other) - shared)
            if score > best_score or (score == best_score and best is None):
                best, best_score = number, score
        if best is None:
            groups.append(QuestionGroup(words=word_set))
            best = len(groups) - 1
            for word in prefix:
                index.setdefault((word, size), []).append(best)
        groups[best].questions.append(question)
    return sorted(
        groups, key=lambda g: (-g.count, -g.last_seen.timestamp(), g.example.text.lower())
    )


@dataclass(frozen=True)
class GroupView:
    """A group as the page shows it, personal details masked."""

    count: int
    example: str
    other_examples: list[str]
    first_seen: datetime
    last_seen: datetime
    conversation_ids: list[str]
    """The newest :data:`MAX_LINKS` conversations."""
    conversation_count: int


def group_views(
    groups: Sequence[QuestionGroup], names: Mapping[str, Sequence[str]]
) -> list[GroupView]:
    """``groups`` for display, each wording's email addresses, phone numbers and the names
    given in its conversation's callback requests (``names``) masked."""

    def shown(question: Question) -> str:
        return mask_text(question.text.strip(), names.get(question.conversation_id, ()))

    views = []
    for group in groups:
        ids = group.conversation_ids()
        views.append(
            GroupView(
                count=group.count,
                example=shown(group.example),
                other_examples=[shown(q) for q in group.other_examples],
                first_seen=group.first_seen,
                last_seen=group.last_seen,
                conversation_ids=ids[:MAX_LINKS],
                conversation_count=len(ids),
            )
        )
    return views


RANGE_LABELS = {"date_from": "Sent from", "date_to": "Sent to"}
"""The page's date fields and their labels."""


def date_range(params: Mapping[str, str]) -> tuple[date | None, date | None]:
    """The page's ``date_from`` and ``date_to`` (empty: open-ended); ValueError with a
    sentence for staff when one cannot be used."""
    days: list[date | None] = []
    for name, label in RANGE_LABELS.items():
        value = params.get(name, "").strip()
        day = None
        if value:
            with suppress(ValueError):
                day = date.fromisoformat(value) if len(value) == len("YYYY-MM-DD") else None
            if day is None:
                raise ValueError(
                    f'"{label}" must be a date written as YYYY-MM-DD, for example 2026-03-01.'
                )
        days.append(day)
    first, last = days
    if first and last and first > last:
        raise ValueError('"Sent to" must be on or after "Sent from".')
    return first, last


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


async def unanswered_questions(
    session: AsyncSession, date_from: date | None = None, date_to: date | None = None
) -> list[Question]:
    """Patient messages that fell back or were understood with confidence below the inbox's
    low-confidence threshold, sent between ``date_from`` and ``date_to`` (UTC days,
    inclusive). Button presses (commands starting with ``/``) are left out, and so is every
    message staff may not see (:data:`~api.staff.visibility.MESSAGE_SHOWN`: a conversation
    without transcript consent never feeds this page)."""
    statement = select(
        Message.conversation_id, Message.seq, Message.text, Message.created_at
    ).where(
        Message.role == "patient",
        or_(Message.intent == FALLBACK_INTENT, Message.intent_confidence < LOW_CONFIDENCE),
        Message.text != "",
        Message.text.not_like("/%"),
        MESSAGE_SHOWN,
    )
    if date_from is not None:
        statement = statement.where(Message.created_at >= _start_of(date_from))
    if date_to is not None:
        statement = statement.where(Message.created_at < _start_of(date_to + timedelta(days=1)))
    rows = await session.execute(statement)
    return [Question(cid, seq, text, at) for cid, seq, text, at in rows.tuples()]


async def callback_names(
    session: AsyncSession, conversation_ids: Sequence[str]
) -> dict[str, list[str]]:
    """The names given in the callback requests of ``conversation_ids``."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(conversation_ids), 500):
        chunk = list(conversation_ids[start : start + 500])
        rows = await session.execute(
            select(CallbackRequest.conversation_id, CallbackRequest.name).where(
                CallbackRequest.conversation_id.in_(chunk)
            )
        )
        for cid, name in rows.tuples():
            found.setdefault(cid, []).append(name)
    return found
