"""The field test's figures for staff: per month, the checks at the start (before) and at
the end (after) of the guided steps, side by side.

The results are anonymous counts (``api.models.FieldCheckCount``): no conversation, no
person, so a "before" and an "after" can never be paired. Each month therefore gives two
separate distributions, and the page and the CSV say how many took each, the mean knowledge
score (0-5), the share who said yes to all four SURE questions, and the whole distribution
of both. With fewer than :data:`FEW` checks a figure is marked as too few to read.

The CSV has months and numbers only (no conversation id, no text); its cells still go
through the same formula guard as every other export (``api.staff.export.neutralise``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from api.field_checks import stored_counts
from api.models import FieldCheckCount
from api.staff.export import csv_document
from contract.payloads import FIELD_CHECK_KNOWLEDGE_MAX, FIELD_CHECK_PHASES, FIELD_CHECK_SURE_MAX

FEW = 5
"""Fewer checks than this in a month and phase: the figures are shown, marked as too few."""

CSV_COLUMNS: tuple[str, ...] = (
    "month",
    "phase",
    "took",
    "mean_knowledge",
    "share_sure_4_of_4",
    *(f"knowledge_{n}" for n in range(FIELD_CHECK_KNOWLEDGE_MAX + 1)),
    *(f"sure_{n}" for n in range(FIELD_CHECK_SURE_MAX + 1)),
)


@dataclass(frozen=True)
class PhaseFigures:
    """One month's checks of one phase."""

    knowledge: tuple[int, ...]  # how many scored 0, 1, ... 5
    sure: tuple[int, ...]  # how many said yes 0, 1, ... 4 times

    @property
    def took(self) -> int:
        return sum(self.knowledge)

    @property
    def mean_knowledge(self) -> float | None:
        if not self.took:
            return None
        return sum(score * n for score, n in enumerate(self.knowledge)) / self.took

    @property
    def share_sure_all(self) -> float | None:
        """The share who said yes to all four SURE questions."""
        return self.sure[FIELD_CHECK_SURE_MAX] / self.took if self.took else None

    @property
    def few(self) -> bool:
        return 0 < self.took < FEW


@dataclass(frozen=True)
class MonthFigures:
    month: str  # YYYY-MM
    before: PhaseFigures
    after: PhaseFigures

    def phase(self, name: str) -> PhaseFigures:
        return self.before if name == "before" else self.after


def _empty() -> tuple[list[int], list[int]]:
    return [0] * (FIELD_CHECK_KNOWLEDGE_MAX + 1), [0] * (FIELD_CHECK_SURE_MAX + 1)


def figures(rows: Iterable[FieldCheckCount]) -> list[MonthFigures]:
    """The counts as figures per month, newest month first."""
    tallies: dict[str, dict[str, tuple[list[int], list[int]]]] = {}
    for row in rows:
        if row.phase not in FIELD_CHECK_PHASES or not (
            0 <= row.knowledge <= FIELD_CHECK_KNOWLEDGE_MAX and 0 <= row.sure <= FIELD_CHECK_SURE_MAX
        ):
            continue  # the table's checks refuse such rows; never count one that slipped in
        month = tallies.setdefault(row.month, {phase: _empty() for phase in FIELD_CHECK_PHASES})
        knowledge, sure = month[row.phase]
        knowledge[row.knowledge] += row.checks
        sure[row.sure] += row.checks
    return [
        MonthFigures(
            month=month,
            **{phase: PhaseFigures(tuple(k), tuple(s)) for phase, (k, s) in phases.items()},
        )
        for month, phases in sorted(tallies.items(), reverse=True)
    ]


async def monthly(session: AsyncSession) -> list[MonthFigures]:
    return figures(await stored_counts(session))


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def csv_rows(months: Sequence[MonthFigures]) -> list[list[str]]:
    """One row per month and phase (before first), months newest first."""
    rows: list[list[str]] = []
    for month in months:
        for phase in FIELD_CHECK_PHASES:
            f = month.phase(phase)
            rows.append([
                month.month, phase, str(f.took), _number(f.mean_knowledge, 2),
                _number(f.share_sure_all, 3), *map(str, f.knowledge), *map(str, f.sure),
            ])
    return rows


def to_csv(rows: Iterable[Sequence[str]]) -> tuple[str, int]:
    """The CSV document (header first, every cell through the formula guard) and its number
    of data rows."""
    return csv_document(CSV_COLUMNS, rows)
