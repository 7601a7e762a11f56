"""Patients as they really write: follow-ups, compound questions, long stories, near-topic
requests, other languages, buried red flags and harmless mentions, through the public API.

``python -m eval.conversational [--set FILE] [--url URL] [--report PATH]`` (API runtime;
``make eval`` runs it on eval/conversational.yml, written blind to the training data and the
other sets). Without ``--url`` it starts a private stack (ops.stack), whose test key lets it
read what the assistant understood.

A set is YAML: ``cases``, each with an ``id``, a ``class``, the patient's ``turns`` (each
turn but the last is context) and ``expect`` on the reply to the last turn:

* ``topics``: every one answered with at least one source, in this order;
* ``mentions``: words or figures the reply must contain;
* ``red_flag``: the level the reply must be marked with (a more severe one counts), or
  ``none``: no red flag at all (a false alarm otherwise);
* ``decline``: the near-topic kind declined (the intent ``ask_<kind>``), with no knowledge
  answer;
* ``language``: the reply is the domain's response in that language (``utter_*_<code>``).

A case is right when every expectation holds. The report gives, per class, right/total, the
red-flag catch rate per level, the false-alarm rate on cases expecting none, the time per
message (the API's whole turn, measured at the client) and every miss.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from contract.levels import LEVELS, most_severe
from api.patient_auth import PatientKeys
from api.schemas import TEST_KEY_HEADER
from eval.stack import api_stack

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SET = ROOT / "eval" / "conversational.yml"
DOMAIN_FILE = ROOT / "domain.yml"

# A reply to an urgent level counts for a less urgent expectation, never the other way
# (emergency and crisis are equally urgent here: each has its own reply).
_URGENCY = {"emergency": 0, "crisis": 0, "same_day": 1, "prompt": 2}
CLASSES = ("multi_turn", "long", "compound", "near_topic", "non_english", "buried_red_flag",
           "negative", "fact")
_PLACEHOLDER = re.compile(r"\\\{[a-z_]+\\\}")


@dataclass
class Outcome:
    case: dict[str, Any]
    right: bool = False
    problems: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    red_flag: str | None = None
    intent: str | None = None
    seconds: list[float] = field(default_factory=list)
    text: str = ""


def language_patterns(domain_file: Path = DOMAIN_FILE) -> dict[str, list[re.Pattern[str]]]:
    """Per language code, the domain responses in that language (``utter_..._<code>``) as
    patterns, placeholders matching anything."""
    domain = yaml.safe_load(domain_file.read_text(encoding="utf-8"))
    out: dict[str, list[re.Pattern[str]]] = defaultdict(list)
    for name, variants in (domain.get("responses") or {}).items():
        match = re.search(r"_([a-z]{2})$", name)
        if not match or not name.startswith("utter_"):
            continue
        for variant in variants:
            text = " ".join(str(variant.get("text") or "").split())
            if text:
                pattern = _PLACEHOLDER.sub(".*?", re.escape(text))
                out[match.group(1)].append(re.compile(pattern, re.DOTALL))
    return out


def _in_language(text: str, patterns: list[re.Pattern[str]]) -> bool:
    flat = " ".join(text.split())
    return any(p.search(flat) for p in patterns)


def check(case: dict[str, Any], messages: list[dict[str, Any]], understanding: dict[str, Any] | None,
          languages: dict[str, list[re.Pattern[str]]]) -> Outcome:
    """Whether one reply meets its case's expectations (pure: no I/O)."""
    expect = case.get("expect") or {}
    outcome = Outcome(case)
    outcome.text = "\n".join(str(m.get("text") or "") for m in messages)
    answered = [m["topic"] for m in messages if m.get("topic") and m.get("sources")]
    outcome.topics = list(dict.fromkeys(answered))
    flags = [m.get("red_flag") for m in messages if m.get("red_flag")]
    outcome.red_flag = most_severe(*flags)
    outcome.intent = (understanding or {}).get("intent")
    problems = outcome.problems

    wanted_flag = expect.get("red_flag")
    if wanted_flag and wanted_flag != "none":
        if outcome.red_flag is None:
            problems.append(f"missed red flag {wanted_flag}")
        elif _URGENCY[outcome.red_flag] > _URGENCY[wanted_flag]:
            problems.append(f"red flag {outcome.red_flag}, expected {wanted_flag}")
    elif outcome.red_flag:
        problems.append(f"false alarm {outcome.red_flag}")

    topics = list(expect.get("topics") or [])
    if topics and not (wanted_flag and wanted_flag != "none"):
        missing = [t for t in topics if t not in outcome.topics]
        if missing:
            problems.append(f"topics {outcome.topics}, expected {topics}")
        else:
            order = [outcome.topics.index(t) for t in topics]
            if order != sorted(order):
                problems.append(f"topics out of order {outcome.topics}, expected {topics}")
    low = " ".join(outcome.text.lower().split())
    for word in expect.get("mentions") or []:
        if str(word).lower() not in low:
            problems.append(f"does not mention {word!r}")
    kind = expect.get("decline")
    if kind:
        if outcome.intent != f"ask_{kind}":
            problems.append(f"read as {outcome.intent}, expected ask_{kind}")
        if outcome.topics:
            problems.append(f"answered from {outcome.topics} instead of declining")
    language = expect.get("language")
    if language and not _in_language(outcome.text, languages.get(language, [])):
        problems.append(f"reply not in {language}")
    outcome.right = not problems
    return outcome


def run_case(client: httpx.Client, case: dict[str, Any], headers: dict[str, str],
             languages: dict[str, list[re.Pattern[str]]]) -> Outcome:
    created = client.post("/api/v1/conversations", headers=headers)
    created.raise_for_status()
    cid = created.json()["conversation_id"]
    seconds: list[float] = []
    body: dict[str, Any] = {}
    for text in case["turns"]:
        started = time.perf_counter()
        response = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text}, headers=headers)
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
        body = response.json()
    outcome = check(case, body.get("messages") or [], body.get("understanding"), languages)
    outcome.seconds = seconds
    return outcome


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    per_class: dict[str, Counter] = defaultdict(Counter)
    caught: dict[str, Counter] = defaultdict(Counter)
    alarms = Counter()
    for o in outcomes:
        per_class[o.case["class"]]["right" if o.right else "wrong"] += 1
        wanted = (o.case.get("expect") or {}).get("red_flag")
        if wanted and wanted != "none":
            ok = o.red_flag is not None and _URGENCY[o.red_flag] <= _URGENCY[wanted]
            caught[wanted]["caught" if ok else "missed"] += 1
        else:
            alarms["alarm" if o.red_flag else "quiet"] += 1
    times = [s for o in outcomes for s in o.seconds]
    right = sum(o.right for o in outcomes)
    return {
        "cases": len(outcomes),
        "right": right,
        "share": right / len(outcomes) if outcomes else 0.0,
        "per_class": {c: {"right": n["right"], "total": n["right"] + n["wrong"]}
                      for c, n in sorted(per_class.items())},
        "red_flags": {lv: {"caught": n["caught"], "total": n["caught"] + n["missed"]}
                      for lv, n in sorted(caught.items())},
        "false_alarms": {"alarms": alarms["alarm"], "total": alarms["alarm"] + alarms["quiet"]},
        "negatives_false_alarms": {
            "alarms": sum(1 for o in outcomes if o.case["class"] == "negative" and o.red_flag),
            "total": sum(1 for o in outcomes if o.case["class"] == "negative"),
        },
        "seconds_per_message": {
            "mean": round(statistics.fmean(times), 4) if times else None,
            "median": round(statistics.median(times), 4) if times else None,
            "p95": round(sorted(times)[int(0.95 * (len(times) - 1))], 4) if times else None,
            "messages": len(times),
        },
        "ms_per_message_by_class": {
            cls: round(1000 * statistics.fmean(ts), 1)
            for cls in sorted({o.case["class"] for o in outcomes})
            if (ts := [t for o in outcomes if o.case["class"] == cls for t in o.seconds])
        },
        "misses": [
            {"id": o.case["id"], "class": o.case["class"], "turns": o.case["turns"],
             "problems": o.problems, "intent": o.intent, "reply": o.text[:300]}
            for o in outcomes if not o.right
        ],
    }


def _share(right: int, total: int) -> str:
    return f"{right}/{total} = {right / total:.1%}" if total else "0/0"


def print_report(report: dict[str, Any], name: str) -> None:
    print(f"\n{name}: right and cited (every expectation met), per class")
    for cls, n in report["per_class"].items():
        print(f"  {cls:16s} {_share(n['right'], n['total'])}")
    print(f"  {'all':16s} {_share(report['right'], report['cases'])}")
    print("Red flags caught (at that level or a more urgent one):")
    for level, n in report["red_flags"].items():
        print(f"  {level:16s} {_share(n['caught'], n['total'])}")
    fa, neg = report["false_alarms"], report["negatives_false_alarms"]
    print(f"False alarms on cases with no red flag: {_share(fa['alarms'], fa['total'])}; "
          f"on the negatives (past, someone else's, denied): {_share(neg['alarms'], neg['total'])}")
    t = report["seconds_per_message"]
    if t["messages"]:
        print(f"Time per message through the API: mean {t['mean'] * 1000:.0f} ms, median "
              f"{t['median'] * 1000:.0f} ms, p95 {t['p95'] * 1000:.0f} ms ({t['messages']} messages)")
        print("  mean per class: " + ", ".join(f"{c} {ms:.0f} ms" for c, ms in report["ms_per_message_by_class"].items()))
    if report["misses"]:
        print("\nMisses:")
        for miss in report["misses"]:
            print(f"  {miss['id']:10s} {miss['class']:15s} {'; '.join(miss['problems'])} "
                  f"[{miss['intent']}] {miss['turns'][-1][:90]!r}")


def load_cases(path: Path) -> list[dict[str, Any]]:
    """The cases of a set, checked for shape (a clear error naming the case otherwise)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        raise ValueError(f"{path}: no `cases` list")
    seen: set[str] = set()
    for case in cases:
        cid = case.get("id")
        if not cid or cid in seen:
            raise ValueError(f"{path}: a case without an id, or a repeated id ({cid!r})")
        seen.add(cid)
        if case.get("class") not in CLASSES:
            raise ValueError(f"{path}: case {cid}: unknown class {case.get('class')!r}")
        turns = case.get("turns")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t.strip() for t in turns):
            raise ValueError(f"{path}: case {cid}: `turns` must be a list of messages")
        flag = (case.get("expect") or {}).get("red_flag")
        if flag is not None and flag != "none" and flag not in LEVELS:
            raise ValueError(f"{path}: case {cid}: unknown red_flag {flag!r}")
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.conversational", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running API (default: start a private stack)")
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="case set (YAML)")
    parser.add_argument("--report", type=Path, default=ROOT / "results" / "eval" / "conversational.json")
    parser.add_argument("--test-key-env", default="MESO_TEST_KEY",
                        help="environment variable holding a deployment's test key (with --url)")
    args = parser.parse_args(argv)
    cases = load_cases(args.set)
    languages = language_patterns()
    started = time.monotonic()
    with api_stack(args.url, args.test_key_env) as env, httpx.Client(
        base_url=env["MESO_API_URL"], timeout=30, auth=PatientKeys()
    ) as client:
        headers = {TEST_KEY_HEADER: env["MESO_TEST_KEY"]} if env.get("MESO_TEST_KEY") else {}
        outcomes = [run_case(client, case, headers, languages) for case in cases]
    report = summarise(outcomes)
    report["set"] = str(args.set.relative_to(ROOT) if args.set.is_relative_to(ROOT) else args.set)
    report["seconds"] = round(time.monotonic() - started, 1)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print_report(report, report["set"])
    print(f"\nReport: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
