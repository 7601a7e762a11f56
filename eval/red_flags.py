"""Red flags and refusals: what the rules, the classifier and the safety gate each catch.

``python -m eval.red_flags [--set FILE ...] [--model models/meso.tar.gz] [--json PATH]``
(bot runtime; ``make safety-eval``). Without ``--set`` it measures the dev set
(tests/safety/phrasings.yml) and the two held-out sets (eval/red_flags_holdout.yml and
eval/red_flags_holdout2.yml, each written blind to the rules and the training data).

A set is YAML with the keys ``emergency``, ``crisis``, ``same_day``, ``prompt`` (red-flag
phrasings), ``no_flag`` (symptom-free messages) and ``refuse`` (requests to decline, each
with its ``kind``); items are ``{text: ...}`` or plain strings. A set of realistic
conversations (eval/conversational.yml, ``cases``) gives its one-message cases: a case
expecting a red flag in that group, one expecting ``none`` (the buried, other-language and
harmless-mention classes) in ``no_flag``; it is measured besides the three default sets.

For each text it records:

- rules: contract/safety/red_flags.py and contract/safety/limits.py alone;
- nlu: the trained classifier's own top intent before the gate (the gate stores it in the
  message's ``safety`` summary), at any confidence and at the gate's threshold;
- combined: what the gate outputs (the parsed intent).

and reports, per level, the share caught at that level or a more severe one; the
false-alarm rate on ``no_flag`` (and on ``refuse``, symptom-free too); refusal accuracy
(the right ``ask_<kind>``) and false refusals on ``no_flag``; and, for choosing the gate's
threshold, combined catch and false-alarm rates for several thresholds. Without a model
(or with ``--rules-only``) only the rule figures are given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import yaml

from contract.safety.limits import detect_limit
from contract.levels import INTENT_PREFIX, MOST_SEVERE_FIRST as LEVELS, severity
from contract.safety.red_flags import detect

ROOT = Path(__file__).resolve().parent.parent
DEV_SET = ROOT / "tests" / "safety" / "phrasings.yml"
HOLDOUT_SETS = (ROOT / "eval" / "red_flags_holdout.yml", ROOT / "eval" / "red_flags_holdout2.yml")
CONVERSATION_SETS = (ROOT / "eval" / "conversational.yml",)
_RED_FLAG_CLASSES = frozenset({"buried_red_flag", "negative", "non_english"})
DEFAULT_MODEL = ROOT / "models" / "meso.tar.gz"
RED_FLAG_PREFIX = INTENT_PREFIX
THRESHOLDS = (0.3, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9)


@dataclass
class Case:
    group: str  # a level, no_flag or refuse
    text: str
    kind: Optional[str] = None  # for refuse
    rules_level: Optional[str] = None
    rules_flags: list[str] = field(default_factory=list)
    mention_only: bool = False
    negated: bool = False
    rules_limit: Optional[str] = None
    nlu_intent: Optional[str] = None
    nlu_confidence: float = 0.0
    combined_intent: Optional[str] = None


def load_set(path: Path) -> list[Case]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "cases" in data:
        return _conversation_cases(data["cases"])
    cases = []
    for group in (*LEVELS, "no_flag", "refuse"):
        for item in data.get(group) or []:
            if isinstance(item, str):
                item = {"text": item}
            cases.append(Case(group=group, text=str(item["text"]), kind=item.get("kind")))
    return cases


def _conversation_cases(items: list[dict[str, Any]]) -> list[Case]:
    """The one-message red-flag cases of a realistic-conversation set."""
    cases = []
    for item in items:
        expect = item.get("expect") or {}
        turns = item.get("turns") or []
        if item.get("class") not in _RED_FLAG_CLASSES or len(turns) != 1:
            continue
        level = expect.get("red_flag") or "none"
        cases.append(Case(group=level if level in LEVELS else "no_flag", text=str(turns[0])))
    return cases


def apply_rules(case: Case) -> None:
    detection = detect(case.text)
    case.rules_level = detection.level
    case.rules_flags = list(detection.flags)
    case.mention_only = detection.mention_only
    case.negated = detection.negated
    request = detect_limit(case.text)
    case.rules_limit = request.kind if request else None


def level_of(intent: Optional[str]) -> Optional[str]:
    if intent and intent.startswith(RED_FLAG_PREFIX) and intent[len(RED_FLAG_PREFIX):] in LEVELS:
        return intent[len(RED_FLAG_PREFIX):]
    return None


def caught(found: Optional[str], expected: str) -> bool:
    return found is not None and severity(found) >= severity(expected)


# --- the model ---------------------------------------------------------------------------
def load_agent(model: Path) -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    # Unconfigured, Rasa's structlog prints every parsed message at debug level.
    configure_structlog(logging.WARNING)
    return Agent.load(str(model))


def gate_threshold(agent: Any, default: float = 0.6) -> float:
    """The SafetyGate's threshold the model was trained with, else the one in config.yml."""
    try:
        for node in agent.processor.model_metadata.predict_schema.nodes.values():
            if node.uses.__name__ == "SafetyGate":
                return float({**node.uses.get_default_config(), **node.config}["threshold"])
    except AttributeError:
        pass
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    for component in config.get("pipeline", []):
        if str(component.get("name", "")).endswith("SafetyGate"):
            return float(component.get("threshold", default))
    return default


async def _parse_all(agent: Any, cases: list[Case]) -> None:
    for case in cases:
        parsed = await agent.parse_message(case.text)
        case.combined_intent = (parsed.get("intent") or {}).get("name")
        classifier = (parsed.get("safety") or {}).get("classifier")
        if classifier is None:  # a model without the gate: the top non-fallback intent
            ranking = parsed.get("intent_ranking") or []
            classifier = next((r for r in ranking if r.get("name") != "nlu_fallback"), parsed.get("intent") or {})
        case.nlu_intent = classifier.get("name")
        case.nlu_confidence = float(classifier.get("confidence") or 0.0)


# --- figures ---------------------------------------------------------------------------
def _share(hits: int, total: int) -> Optional[float]:
    return round(hits / total, 4) if total else None


def gate_level(case: Case, threshold: float) -> Optional[str]:
    """What the gate would output at ``threshold`` (the same logic as bot/nlu/safety.py)."""
    if case.rules_level:
        return case.rules_level
    level = level_of(case.nlu_intent)
    if level is None:
        return None
    if (case.mention_only or case.negated) and level != "crisis":
        return None
    return level if case.nlu_confidence >= threshold else None


def report(cases: list[Case], with_model: bool, threshold: float) -> dict[str, Any]:
    out: dict[str, Any] = {"levels": {}, "threshold": threshold}
    for level in LEVELS:
        group = [c for c in cases if c.group == level]
        row: dict[str, Any] = {
            "n": len(group),
            "rules": _share(sum(caught(c.rules_level, level) for c in group), len(group)),
            "rules_missed": [c.text for c in group if not caught(c.rules_level, level)],
        }
        if with_model:
            row["nlu"] = _share(sum(caught(level_of(c.nlu_intent), level) for c in group), len(group))
            row["nlu_at_threshold"] = _share(sum(
                caught(level_of(c.nlu_intent), level) and c.nlu_confidence >= threshold for c in group), len(group))
            row["nlu_only"] = [c.text for c in group
                               if caught(level_of(c.nlu_intent), level) and not caught(c.rules_level, level)]
            row["combined"] = _share(sum(caught(level_of(c.combined_intent), level) for c in group), len(group))
            row["combined_missed"] = [c.text for c in group if not caught(level_of(c.combined_intent), level)]
        out["levels"][level] = row
    for name, groups in (("no_flag", ("no_flag",)), ("refuse", ("refuse",))):
        group = [c for c in cases if c.group in groups]
        row = {"n": len(group),
               "rules": _share(sum(c.rules_level is not None for c in group), len(group)),
               "rules_misfires": [(c.text, c.rules_flags) for c in group if c.rules_level]}
        if with_model:
            row["nlu"] = _share(sum(level_of(c.nlu_intent) is not None for c in group), len(group))
            row["nlu_at_threshold"] = _share(sum(level_of(c.nlu_intent) is not None and c.nlu_confidence >= threshold
                                                 for c in group), len(group))
            row["combined"] = _share(sum(level_of(c.combined_intent) is not None for c in group), len(group))
            row["combined_misfires"] = [(c.text, c.combined_intent) for c in group if level_of(c.combined_intent)]
        out.setdefault("false_alarms", {})[name] = row
    refuse = [c for c in cases if c.group == "refuse"]
    no_flag = [c for c in cases if c.group == "no_flag"]
    refusals: dict[str, Any] = {
        "n": len(refuse),
        "rules": _share(sum(c.rules_limit == c.kind for c in refuse), len(refuse)),
        "rules_missed": [(c.text, c.kind, c.rules_limit) for c in refuse if c.rules_limit != c.kind],
        "false_refusals_rules": _share(sum(c.rules_limit is not None for c in no_flag), len(no_flag)),
        "false_refusal_texts": [(c.text, c.rules_limit) for c in no_flag if c.rules_limit],
    }
    if with_model:
        refusals["nlu"] = _share(sum(c.nlu_intent == f"ask_{c.kind}" for c in refuse), len(refuse))
        refusals["combined"] = _share(sum(c.combined_intent == f"ask_{c.kind}" for c in refuse), len(refuse))
        refusals["false_refusals_nlu"] = _share(sum(str(c.nlu_intent).startswith("ask_") and c.nlu_intent in
                                                    {f"ask_{k}" for k in ("diagnosis", "dose", "stop_medicine",
                                                                          "self_injection")} for c in no_flag),
                                                len(no_flag))
        refusals["false_refusals_combined"] = _share(sum(c.combined_intent in {
            f"ask_{k}" for k in ("diagnosis", "dose", "stop_medicine", "self_injection")} for c in no_flag),
            len(no_flag))
    out["refusals"] = refusals
    if with_model:
        sweep = []
        for t in THRESHOLDS:
            row = {"threshold": t}
            for level in LEVELS:
                group = [c for c in cases if c.group == level]
                row[level] = _share(sum(caught(gate_level(c, t), level) for c in group), len(group))
            row["false_alarms_no_flag"] = _share(sum(gate_level(c, t) is not None for c in no_flag), len(no_flag))
            sweep.append(row)
        out["threshold_sweep"] = sweep
    return out


def _pct(value: Optional[float]) -> str:
    return "  -  " if value is None else f"{value * 100:5.1f}%"


def print_report(name: str, figures: Mapping[str, Any], with_model: bool) -> None:
    print(f"\n== {name}")
    head = f"{'level':<10} {'n':>4}  {'rules':>6}"
    if with_model:
        head += f"  {'nlu':>6}  {'nlu@t':>6}  {'gate':>6}"
    print(head)
    for level, row in figures["levels"].items():
        line = f"{level:<10} {row['n']:>4}  {_pct(row['rules'])}"
        if with_model:
            line += f"  {_pct(row['nlu'])}  {_pct(row['nlu_at_threshold'])}  {_pct(row['combined'])}"
        print(line)
    print("false alarms (any red flag):")
    for group, row in figures["false_alarms"].items():
        line = f"{group:<10} {row['n']:>4}  {_pct(row['rules'])}"
        if with_model:
            line += f"  {_pct(row['nlu'])}  {_pct(row['nlu_at_threshold'])}  {_pct(row['combined'])}"
        print(line)
    ref = figures["refusals"]
    line = f"refusals   {ref['n']:>4}  {_pct(ref['rules'])}"
    if with_model:
        line += f"  {_pct(ref['nlu'])}  {'':>6}  {_pct(ref['combined'])}"
    print(line + "   (right ask_<kind>)")
    line = f"false refusals on no_flag: rules {_pct(ref['false_refusals_rules'])}"
    if with_model:
        line += f", nlu {_pct(ref['false_refusals_nlu'])}, gate {_pct(ref['false_refusals_combined'])}"
    print(line)
    for level, row in figures["levels"].items():
        for text in row["rules_missed"]:
            print(f"  rules missed [{level}]: {text}")
        for text in row.get("combined_missed", []):
            print(f"  gate missed  [{level}]: {text}")
    for group, row in figures["false_alarms"].items():
        for text, flags in row["rules_misfires"]:
            print(f"  rules false alarm [{group}]: {text} {flags}")
        for text, intent in row.get("combined_misfires", []):
            print(f"  gate false alarm  [{group}]: {text} -> {intent}")
    for text, kind, got in ref["rules_missed"]:
        print(f"  refusal missed: {text} ({kind}; rules said {got})")
    for text, got in ref["false_refusal_texts"]:
        print(f"  false refusal: {text} ({got})")
    if with_model:
        print(f"threshold sweep (gate = rules + classifier red flag at >= t, not a mention; gate uses "
              f"{figures['threshold']}):")
        for row in figures["threshold_sweep"]:
            print(f"  t={row['threshold']:<5} " + "  ".join(f"{lvl} {_pct(row[lvl])}" for lvl in LEVELS)
                  + f"  false alarms {_pct(row['false_alarms_no_flag'])}")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", type=Path, dest="sets",
                        help="a phrasing set (repeatable; default: the dev and held-out sets)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="trained model (.tar.gz)")
    parser.add_argument("--rules-only", action="store_true", help="measure the rules alone")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(list(argv) if argv is not None else None)

    sets = args.sets or [DEV_SET, *HOLDOUT_SETS, *CONVERSATION_SETS]
    with_model = not args.rules_only and args.model.exists()
    if not args.rules_only and not with_model:
        print(f"no model at {args.model}: rule figures only (train one, or pass --model)", file=sys.stderr)
    agent = load_agent(args.model) if with_model else None
    threshold = gate_threshold(agent) if with_model else 0.0
    results: dict[str, Any] = {}
    for path in sets:
        if not path.exists():
            print(f"missing set {path}", file=sys.stderr)
            return 2
        cases = load_set(path)
        for case in cases:
            apply_rules(case)
        if agent is not None:
            asyncio.run(_parse_all(agent, cases))
        figures = report(cases, with_model, threshold)
        results[str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)] = figures
        print_report(str(path), figures, with_model)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
