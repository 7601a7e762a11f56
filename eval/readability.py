"""Reading level of every text the assistant can send, and the review date on every answer.

``python -m eval.readability`` (bot runtime, ``make readability``) measures the
Flesch-Kincaid grade (textstat 0.7.3, syllables counted with Pyphen) of:

- ``knowledge``: each knowledge entry's answer text, as ``answer_reply`` shows it;
- ``knowledge-reply``: the whole reply to each entry, with the fixed "How sure the
  sources are ... Information checked on ..." line and any clinic facts (reported on its
  own, not counted in the overall figures: it repeats the answer texts);
- ``domain``: every response text in domain.yml, placeholders filled with sample values
  (templates that are nothing but placeholders are skipped);
- ``decision``: the decision-aid texts in knowledge/decision/*.yml, when there are any
  (every ``text``, ``why`` and ``ask``), and each share of people of knowledge/frequencies.yml
  as the assistant says it ("88 out of 100 ... How sure: ...").

It prints the count per grade band, the median, the 90th percentile and the share at or
below ``--max-grade`` (default 8), overall and per kind, then every text above that grade.
It also checks that every knowledge reply shows its entry's review date.

Exit status: 1 when a knowledge reply lacks its review date, or, with ``--min-share``,
when fewer than that share of the texts (overall) are at or below ``--max-grade``;
2 when the knowledge base has not been built. The knowledge comes from ``build/kb.json``
(``make kb``); the sentence encoder is not loaded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from importlib.metadata import version as _version
from typing import Any, Iterable, Iterator, Mapping

import textstat
import yaml

from bot import paths
from bot.dialogue.replies import answer_reply
from bot.kb.loader import load_clinic
from bot.kb.model import Clinic, KnowledgeBase

DEFAULT_MAX_GRADE = 8.0
# Upper bounds of the grade bands (a grade equal to a bound falls in the lower band).
BANDS: tuple[tuple[str, float], ...] = (
    ("<=6", 6.0), ("6-8", 8.0), ("8-10", 10.0), ("10-12", 12.0), (">12", math.inf),
)
KINDS = ("knowledge", "knowledge-reply", "domain", "decision")
# Kinds counted in the overall figures: knowledge-reply repeats the knowledge answers.
OVERALL_KINDS = ("knowledge", "domain", "decision")
# Keys of the decision-aid YAML whose string values patients read.
DECISION_KEYS = ("text", "why", "ask")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def grade(text: str) -> float:
    """The Flesch-Kincaid grade of ``text`` (whitespace runs count as one space)."""
    return float(textstat.flesch_kincaid_grade(" ".join(text.split())))


@dataclass(frozen=True)
class Measured:
    kind: str
    id: str
    grade: float
    words: int
    text: str


def measure(kind: str, text_id: str, text: str) -> Measured:
    plain = " ".join(text.split())
    return Measured(kind=kind, id=text_id, grade=grade(plain), words=textstat.lexicon_count(plain), text=plain)


# --- what the assistant can say ------------------------------------------------------------

def load_built_kb(build_dir: Path, clinic_file: Path) -> KnowledgeBase:
    """The knowledge base ``make kb`` built (no encoder, no spaCy), with the clinic's facts."""
    kb_path = build_dir / "kb.json"
    if not kb_path.is_file():
        raise FileNotFoundError(f"no built knowledge base at {kb_path}: run `make kb`")
    data = json.loads(kb_path.read_text(encoding="utf-8"))
    kb = KnowledgeBase.from_dict(data["knowledge"])
    kb.clinic = load_clinic(clinic_file)
    return kb


def knowledge_fingerprint(knowledge_dir: Path) -> str:
    """The hash ``make kb`` stores in kb.json (bot.kb.build._fingerprint), to spot a stale build."""
    digest = hashlib.sha256()
    for path in sorted(knowledge_dir.rglob("*.yml")):
        digest.update(path.relative_to(knowledge_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def readable_date(iso: str) -> str:
    """The review date as replies show it, e.g. ``22 November 2026``."""
    from bot.dialogue import replies

    return replies.readable_date(iso)


def knowledge_texts(domain: Mapping[str, Any], kb: KnowledgeBase) -> Iterator[Measured]:
    """Each entry's answer text, then the whole reply, as ``answer_reply`` builds them."""
    for entry in kb.entries.values():
        reply = answer_reply(domain, kb, entry)
        yield measure("knowledge", entry.id, entry.answer)
        yield measure("knowledge-reply", entry.id, reply.text)


def missing_review_dates(domain: Mapping[str, Any], kb: KnowledgeBase) -> list[str]:
    """Entries whose reply does not show the date the entry was last reviewed."""
    missing = []
    for entry in kb.entries.values():
        text = answer_reply(domain, kb, entry).text
        if readable_date(entry.reviewed) not in text:
            missing.append(entry.id)
    return missing


def _sample_values(clinic: Clinic) -> dict[str, str]:
    """Plausible values for the placeholders of domain.yml's templates."""
    values = {key: str(value) for key, value in asdict(clinic).items() if value not in (None, "")}
    currency = clinic.currency or "GBP"
    ways = [w for w in (clinic.phone, clinic.email) if w]
    values.update({
        "clinic": clinic.name,
        "answer": "",
        "certainty": "moderate",
        "reviewed": "22 November 2026",
        "review_due": "22 November 2027",
        "price": f"{currency} 180",
        "sessions": " (6 sessions)",
        "how": (" on " + " or ".join(ways)) if ways else "",
        "emergency_number": clinic.emergency_number or "999",
    })
    return values


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with known placeholders filled and unknown ones dropped."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), text)


def only_placeholders(text: str) -> bool:
    return not re.search(r"[A-Za-z]", _PLACEHOLDER.sub("", text))


def domain_texts(domain: Mapping[str, Any], clinic: Clinic) -> Iterator[Measured]:
    """Every text variant of every response in the domain (and its buttons' titles)."""
    values = _sample_values(clinic)
    for name, variants in (domain.get("responses") or {}).items():
        for i, variant in enumerate(variants or []):
            if not isinstance(variant, dict):
                continue
            suffix = f"[{i + 1}]" if len(variants) > 1 else ""
            text = variant.get("text")
            if isinstance(text, str) and not only_placeholders(text):
                yield measure("domain", name + suffix, fill(text, values))
            for j, button in enumerate(variant.get("buttons") or []):
                title = button.get("title") if isinstance(button, dict) else None
                if isinstance(title, str) and not only_placeholders(title):
                    yield measure("domain", f"{name}{suffix} button {j + 1}", fill(title, values))


def _decision_strings(node: Any, where: list[str]) -> Iterator[tuple[str, str]]:
    """(``where``-path, text) of every ``text``/``why``/``ask`` string under ``node``.

    A list item with an ``id`` is named by it (``checklist:pregnancy.why``), other items by
    position; mapping keys add a level (``options:mesotherapy/cells/harms.text``).
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key in DECISION_KEYS and isinstance(value, str) and value.strip():
                yield "/".join(where) + "." + str(key), value
            elif isinstance(value, (dict, list)):
                yield from _decision_strings(value, [*where, str(key)])
    elif isinstance(node, list):
        for i, item in enumerate(node):
            item_id = item.get("id") if isinstance(item, dict) else None
            label = [*where[:-1], item_id] if isinstance(item_id, str) else [*where, f"[{i + 1}]"]
            yield from _decision_strings(item, label)


def decision_texts(folder: Path) -> Iterator[Measured]:
    """The decision-aid texts (``text``, ``why``, ``ask``) of ``folder``/*.yml, if any."""
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.yml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            print(f"warning: {path} is not valid YAML, skipped: {exc}", file=sys.stderr)
            continue
        for where, text in _decision_strings(data, []):
            if not only_placeholders(text):
                yield measure("decision", f"{path.stem}:{where}", text)


# --- figures -----------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (pos - low), 2)


def band(value: float) -> str:
    return next(name for name, upper in BANDS if value <= upper)


def summarise(grades: Iterable[float], max_grade: float = DEFAULT_MAX_GRADE) -> dict[str, Any]:
    values = list(grades)
    bands = {name: 0 for name, _ in BANDS}
    for value in values:
        bands[band(value)] += 1
    at_or_below = sum(v <= max_grade for v in values)
    return {
        "count": len(values),
        "bands": bands,
        "median": percentile(values, 0.5),
        "p90": percentile(values, 0.9),
        "max": max(values) if values else None,
        "at_or_below": at_or_below,
        "share_at_or_below": round(at_or_below / len(values), 4) if values else None,
    }


def frequency_texts(domain: Mapping[str, Any], kb: KnowledgeBase) -> Iterator[Measured]:
    """Each share of people in words, with its "How sure" line (bot/dialogue/figures.py)."""
    from bot.dialogue import figures

    for frequency in kb.frequencies.values():
        text = figures.line(domain, kb, frequency) + " " + figures.sure(domain, frequency.certainty_note)
        yield measure("decision", f"frequencies:{frequency.id}", text)


def collect(domain: Mapping[str, Any], kb: KnowledgeBase, decision_dir: Path) -> list[Measured]:
    return [*knowledge_texts(domain, kb), *domain_texts(domain, kb.clinic), *decision_texts(decision_dir),
            *frequency_texts(domain, kb)]


def report(measured: list[Measured], missing: list[str], max_grade: float) -> dict[str, Any]:
    kinds = {k: summarise([m.grade for m in measured if m.kind == k], max_grade) for k in KINDS}
    overall = summarise([m.grade for m in measured if m.kind in OVERALL_KINDS], max_grade)
    above = sorted((m for m in measured if m.grade > max_grade), key=lambda m: (-m.grade, m.kind, m.id))
    return {
        "measure": f"Flesch-Kincaid grade (textstat {_version('textstat')})",
        "max_grade": max_grade,
        "overall_kinds": list(OVERALL_KINDS),
        "overall": overall,
        "kinds": kinds,
        "above": [{"kind": m.kind, "id": m.id, "grade": m.grade, "words": m.words} for m in above],
        "missing_review_date": missing,
        "texts": [{"kind": m.kind, "id": m.id, "grade": m.grade, "words": m.words} for m in measured],
    }


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if pct else f"{value:.1f}"


def print_report(figures: dict[str, Any]) -> None:
    max_grade = figures["max_grade"]
    names = [name for name, _ in BANDS]
    print(f"Reading level: {figures['measure']}; target grade <= {max_grade:g}")
    header = f"{'kind':<16}{'texts':>6}" + "".join(f"{n:>7}" for n in names)
    header += f"{'median':>8}{'p90':>7}{'max':>7}{'<=' + format(max_grade, 'g'):>7}"
    print(header)
    rows = [(k, figures["kinds"][k]) for k in KINDS]
    rows.append(("overall*", figures["overall"]))
    for name, s in rows:
        if not s["count"]:
            print(f"{name:<16}{0:>6}  (none)")
            continue
        print(f"{name:<16}{s['count']:>6}" + "".join(f"{s['bands'][n]:>7}" for n in names)
              + f"{_fmt(s['median']):>8}{_fmt(s['p90']):>7}{_fmt(s['max']):>7}"
              + f"{_fmt(s['share_at_or_below'], pct=True):>7}")
    print(f"* overall = {', '.join(figures['overall_kinds'])} (knowledge-reply repeats the answers)")
    above = figures["above"]
    print(f"\nAbove grade {max_grade:g}: {len(above)}")
    for item in above:
        print(f"  {item['grade']:>5.1f}  {item['kind']:<16}{item['id']}")
    missing = figures["missing_review_date"]
    if missing:
        print(f"\nReplies without their review date: {len(missing)}")
        for eid in missing:
            print(f"  {eid}")
    else:
        print("\nEvery knowledge reply shows its review date.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH ('-' for stdout only)")
    parser.add_argument("--max-grade", type=float, default=DEFAULT_MAX_GRADE,
                        help="the grade a text should not exceed (default 8)")
    parser.add_argument("--min-share", type=float, default=None,
                        help="exit 1 when fewer than this share (0..1) of all texts are at or below --max-grade")
    parser.add_argument("--build-dir", type=Path, default=None, help="where kb.json is (default build/)")
    parser.add_argument("--domain", type=Path, default=None, help="the Rasa domain (default domain.yml)")
    parser.add_argument("--decision-dir", type=Path, default=None,
                        help="decision-aid texts (default knowledge/decision)")
    args = parser.parse_args(argv)

    try:
        kb = load_built_kb(args.build_dir or paths.build_dir(), paths.clinic_file())
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    built = kb.built_from.get("knowledge_sha256")
    if built and built != knowledge_fingerprint(paths.knowledge_dir()):
        print("warning: knowledge/ changed since the last build: run `make kb` for current figures",
              file=sys.stderr)
    domain = paths.load_domain(args.domain)
    decision_dir = args.decision_dir or paths.knowledge_dir() / "decision"
    measured = collect(domain, kb, decision_dir)
    figures = report(measured, missing_review_dates(domain, kb), args.max_grade)

    if args.json == "-":
        print(json.dumps(figures, indent=2))
    else:
        print_report(figures)
        if args.json:
            out = Path(args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
            print(f"\nFigures written to {out}")

    status = 0
    if figures["missing_review_date"]:
        status = 1
    if args.min_share is not None:
        share = figures["overall"]["share_at_or_below"] or 0.0
        if share < args.min_share:
            print(f"\nFAIL: {share:.0%} of texts at or below grade {args.max_grade:g}, "
                  f"fewer than {args.min_share:.0%}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
