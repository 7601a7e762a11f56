"""Frequencies: how many people out of 100 had a result, each stated once with who and when.

``knowledge/frequencies.yml`` lists every share of people the assistant quotes ("88% of the
men had red skin"): the number out of 100, the source's own form of it, which group, how many
people, over what time, the source and how sure the figure is. An entry's ``figures`` and an
option's ``benefits``/``harms`` cell name a frequency by its id; the words in the chat, the
icon array and the summary are all made from that one fact (``bot/dialogue/figures.py``).

So that no share slips past this, the prose of an answer or an option may not state one
itself: a percentage or "N in 100" in the text is a problem (:func:`prose_problems`). A
medicine's strength ("5% minoxidil") is not a share of people and is allowed.

This module imports nothing else from ``bot.kb`` (the model and the decision aid import it).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Collection

import yaml

from bot.kb.values import folded_text as _text
from bot.kb.values import parse_date as _date

FREQUENCY_KINDS: tuple[str, ...] = ("benefit", "harm", "background")
"""``benefit`` and ``harm`` figures may sit in an option's cell of the same name."""

FREQUENCY_FIELDS: tuple[str, ...] = (
    "id", "label", "per_100", "source_form", "who", "how_many", "over", "source", "kind",
    "certainty_note",
)
_REQUIRED_TEXT: tuple[str, ...] = ("label", "source_form", "who", "over", "certainty_note")
_ID = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")

# A share of people written in prose: "88%", "92.9 %", "38 percent", "six in every hundred",
# "88 in 100", "6 out of 100". A strength such as "5% minoxidil" is not one.
_PERCENT = re.compile(r"\d+(?:[.,]\d+)?\s?(?:%|per\s?cent\b)(?!\s*(?:minoxidil|solution|lotion|foam)\b)",
                      re.I)
_PER_HUNDRED = re.compile(r"\b(?:in|out of)\s+(?:every\s+|each\s+|a\s+)?(?:100|hundred)\b"
                          r"(?!\s*(?:days?|weeks?|months?|years?|hours?|dollars?|euros?|pounds?|ml|mg|\$|%))", re.I)


@dataclass(frozen=True)
class Frequency:
    """One share of people, out of 100, with everything a patient needs to weigh it."""

    id: str
    label: str  # what happened, as a short phrase: "red skin for a few hours after a visit"
    per_100: int  # 0 to 100: how many out of 100 people
    source_form: str  # the source's own form of the number: "88%", "33 of 541 patients"
    who: str  # which people: "men who had mesotherapy in one trial"
    how_many: int | None  # how many people that group had; None: the source does not say
    over: str  # over what time: "8 weekly visits"
    source: str  # a source id from sources.yml
    kind: str  # benefit | harm | background
    certainty_note: str  # how sure, in plain words

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Frequency":
        return cls(**data)


def per_100_of(source_form: str) -> int | None:
    """The whole number out of 100 that ``source_form`` states, when it states one plainly.

    ``"92.9%"`` gives 93, ``"33 of 541 patients"`` gives 6; anything else gives None.
    """
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s?%", source_form)
    if match:
        return int(Decimal(match.group(1)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    match = re.match(r"^\s*(\d+)\s+(?:[a-z]+\s+)?(?:of|out of)\s+(\d+)\b", source_form, re.I)
    if match and int(match.group(2)) > 0:
        share = Decimal(match.group(1)) * 100 / Decimal(match.group(2))
        return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return None


def prose_problems(text: str | None) -> list[str]:
    """The shares of people ``text`` states in its own words (each should be a frequency)."""
    if not text:
        return []
    found = [m.group(0) for m in _PERCENT.finditer(text)] + [m.group(0) for m in _PER_HUNDRED.finditer(text)]
    return [f"states a share of people in its text ('{f.strip()}'): name a frequency from "
            f"frequencies.yml instead, so the number out of 100, who, how many and over what time "
            f"are shown with it" for f in found]


def _frequency(raw: Any, n: int, path: Path, source_ids: Collection[str],
               problems: list[str]) -> Frequency | None:
    fid = raw.get("id") if isinstance(raw, dict) else None
    where = f"{path}: frequency '{fid or '#' + str(n + 1)}'"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    start = len(problems)
    if not isinstance(fid, str) or not _ID.match(fid):
        problems.append(f"{where}: needs an 'id' of lowercase words joined by '-'")
    extra = sorted(str(k) for k in raw if k not in FREQUENCY_FIELDS)
    if extra:
        problems.append(f"{where}: unknown field(s) {', '.join(extra)}; known: {', '.join(FREQUENCY_FIELDS)}")
    texts = {key: _text(raw.get(key)) for key in _REQUIRED_TEXT}
    for key, value in texts.items():
        if value is None:
            problems.append(f"{where}: missing '{key}'")
    per_100 = raw.get("per_100")
    if isinstance(per_100, bool) or not isinstance(per_100, int) or not 0 <= per_100 <= 100:
        problems.append(f"{where}: 'per_100' must be a whole number from 0 to 100")
    elif texts["source_form"] is not None:
        stated = per_100_of(texts["source_form"])
        if stated is not None and stated != per_100:
            problems.append(f"{where}: 'per_100' is {per_100}, but '{texts['source_form']}' is "
                            f"{stated} out of 100")
    if "how_many" not in raw:
        problems.append(f"{where}: needs 'how_many': the number of people in the group, or "
                        f"null when the source does not say")
    how_many = raw.get("how_many")
    if how_many is not None and (isinstance(how_many, bool) or not isinstance(how_many, int) or how_many <= 0):
        problems.append(f"{where}: 'how_many' must be a whole number of people, or null")
    source = raw.get("source")
    if not isinstance(source, str) or source not in source_ids:
        problems.append(f"{where}: unknown source id '{source}'")
    kind = raw.get("kind")
    if kind not in FREQUENCY_KINDS:
        problems.append(f"{where}: 'kind' must be one of {', '.join(FREQUENCY_KINDS)}")
    if len(problems) > start:
        return None
    return Frequency(
        id=fid, label=texts["label"], per_100=per_100, source_form=texts["source_form"],
        who=texts["who"], how_many=how_many, over=texts["over"], source=source, kind=kind,
        certainty_note=texts["certainty_note"],
    )


def load_frequencies(path: Path, source_ids: Collection[str], problems: list[str]) -> dict[str, Frequency]:
    """Read and check ``path`` (``knowledge/frequencies.yml``); append each problem.

    A knowledge folder without the file has no frequencies.
    """
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML: {exc}")
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("frequencies"), list) or not data["frequencies"]:
        problems.append(f"{path}: needs a non-empty 'frequencies' list")
        return {}
    reviewed, review_due = _date(data.get("reviewed")), _date(data.get("review_due"))
    if reviewed is None:
        problems.append(f"{path}: missing review date ('reviewed: YYYY-MM-DD')")
    if review_due is None:
        problems.append(f"{path}: missing next review date ('review_due: YYYY-MM-DD')")
    elif reviewed is not None and review_due <= reviewed:
        problems.append(f"{path}: 'review_due' must come after 'reviewed'")
    found: dict[str, Frequency] = {}
    for n, raw in enumerate(data["frequencies"]):
        frequency = _frequency(raw, n, path, source_ids, problems)
        if frequency is None:
            continue
        if frequency.id in found:
            problems.append(f"{path}: frequency '{frequency.id}': duplicate id")
            continue
        found[frequency.id] = frequency
    return found


CELL_KINDS: dict[str, str] = {"benefits": "benefit", "harms": "harm"}
"""The option cells that may show frequencies, and the kind each must be."""


def check_cell(raw: Any, dimension: str, text: str | None, sources: Collection[str],
               known: dict[str, Frequency]) -> tuple[tuple[Frequency, ...], list[str]]:
    """An option cell's ``frequencies`` (ids) and its text: the frequencies, and the problems.

    Only a ``benefits`` or ``harms`` cell with text may name frequencies, each of its own
    kind and from one of the cell's sources; no cell's text may state a share itself.
    """
    problems = prose_problems(text)
    if raw is None:
        return (), problems
    if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
        return (), problems + ["'frequencies' must be a list of ids from frequencies.yml"]
    if dimension not in CELL_KINDS:
        return (), problems + [f"only {' and '.join(CELL_KINDS)} cells may name frequencies"]
    if text is None:
        return (), problems + ["'text' is null but frequencies are named: say what the sources say"]
    found: list[Frequency] = []
    for fid in raw:
        frequency = known.get(fid)
        if frequency is None:
            problems.append(f"unknown frequency id '{fid}'")
            continue
        if frequency.kind != CELL_KINDS[dimension]:
            problems.append(f"frequency '{fid}' is a {frequency.kind}, not a {CELL_KINDS[dimension]}")
        if frequency.source not in sources:
            problems.append(f"frequency '{fid}' cites '{frequency.source}', which is not in the cell's 'sources'")
        found.append(frequency)
    if len(set(raw)) != len(raw):
        problems.append("names a frequency twice")
    return tuple(found), problems
