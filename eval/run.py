"""End-to-end accuracy on patient-style questions, through the public chat API.

``python -m eval.run`` starts a private stack (see ops.stack) unless ``--url`` names a
running API. Each question opens a new conversation; it counts as answered when a reply
message carries the expected topic and at least one source. Follow-ups send a context
question first. Messages that must not be answered from knowledge (gibberish, off-topic,
chit-chat) count as right when no reply carries a topic.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import yaml

from api.patient_auth import PatientKeys
from eval.stack import api_stack

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SET = Path(__file__).resolve().parent / "questions.yml"
NLU_DIR = ROOT / "data" / "nlu"
_ENTITY_MARKUP = re.compile(r"\[([^\]]*)\]\([^)]*\)|\[([^\]]*)\]\{[^}]*\}")


def _plain(text: str) -> str:
    """Lower-case words only, so "Price??" and "price" compare equal."""
    return " ".join(re.findall(r"\w+", text.lower()))


def training_texts(nlu_dir: Path = NLU_DIR) -> set[str]:
    """Every NLU training example, entity markup removed, in ``_plain`` form."""
    texts: set[str] = set()
    for path in sorted(nlu_dir.rglob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            for line in str(block.get("examples", "")).splitlines():
                line = line.strip()
                if line.startswith("- "):
                    texts.add(_plain(_ENTITY_MARKUP.sub(lambda m: m.group(1) or m.group(2) or "", line[2:])))
    return texts


def _conversation(client: httpx.Client) -> str:
    response = client.post("/api/v1/conversations")
    response.raise_for_status()
    return response.json()["conversation_id"]


def _say(client: httpx.Client, cid: str, text: str) -> list[dict[str, Any]]:
    response = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
    response.raise_for_status()
    return response.json()["messages"]


def _answered_topic(messages: list[dict[str, Any]]) -> str | None:
    for message in messages:
        if message.get("topic") and message.get("sources"):
            return message["topic"]
    return None


def evaluate(client: httpx.Client, data: dict[str, Any], seen: set[str] = frozenset()) -> dict[str, Any]:
    """Ask every question; ``seen`` holds training texts, to report unseen questions apart."""
    per_topic: dict[str, Counter] = defaultdict(Counter)
    unseen: Counter = Counter()
    misses: list[dict[str, Any]] = []
    for item in data["questions"]:
        got = _answered_topic(_say(client, _conversation(client), item["text"]))
        ok = got == item["topic"]
        per_topic[item["topic"]]["right" if ok else "wrong"] += 1
        if _plain(item["text"]) not in seen:
            unseen["right" if ok else "wrong"] += 1
        if not ok:
            misses.append({"kind": "question", "text": item["text"], "expected": item["topic"], "got": got})
    follow_right = 0
    for item in data.get("followups", []):
        cid = _conversation(client)
        _say(client, cid, item["context"])
        got = _answered_topic(_say(client, cid, item["text"]))
        follow_right += got == item["topic"]
        if got != item["topic"]:
            misses.append({"kind": "follow-up", "context": item["context"], "text": item["text"],
                           "expected": item["topic"], "got": got})
    refused_right = 0
    for item in data.get("not_answerable", []):
        got = _answered_topic(_say(client, _conversation(client), item["text"]))
        refused_right += got is None
        if got is not None:
            misses.append({"kind": item.get("kind", "not answerable"), "text": item["text"], "got": got})
    right = sum(c["right"] for c in per_topic.values())
    total = sum(sum(c.values()) for c in per_topic.values())
    return {
        "questions": {"right": right, "total": total, "share": right / total if total else 0.0},
        "unseen_questions": {"right": unseen["right"], "total": unseen["right"] + unseen["wrong"]},
        "per_topic": {t: dict(c) for t, c in sorted(per_topic.items())},
        "followups": {"right": follow_right, "total": len(data.get("followups", []))},
        "not_answerable": {"right": refused_right, "total": len(data.get("not_answerable", []))},
        "misses": misses,
    }


def _print(report: dict[str, Any]) -> None:
    print("\nTopic                 right/total")
    for topic, counts in report["per_topic"].items():
        total = counts.get("right", 0) + counts.get("wrong", 0)
        print(f"  {topic:20s} {counts.get('right', 0):3d}/{total:<3d}")
    q, f, n = report["questions"], report["followups"], report["not_answerable"]
    print(f"\nSingle questions answered with the right topic and a source: {q['right']}/{q['total']} = {q['share']:.1%} (target >= 95%)")
    u = report.get("unseen_questions", {"total": 0})
    if u["total"]:
        print(f"  of which not word for word in the NLU training data: {u['right']}/{u['total']} = {u['right'] / u['total']:.1%}")
    if f["total"]:
        print(f"Follow-ups answered with the right topic: {f['right']}/{f['total']} = {f['right'] / f['total']:.1%}")
    if n["total"]:
        print(f"Gibberish, off-topic and chit-chat kept out of the knowledge base: {n['right']}/{n['total']} = {n['right'] / n['total']:.1%}")
    if report["misses"]:
        print("\nMisses:")
        for miss in report["misses"]:
            context = f"[{miss['context']}] " if miss.get("context") else ""
            print(f"  {miss['kind']:10s} {context}{miss['text']!r}: expected {miss.get('expected', 'no answer')}, got {miss['got']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__)
    parser.add_argument("--url", help="a running API (default: start a private stack)")
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="question set (YAML)")
    parser.add_argument("--report", type=Path, default=ROOT / "results" / "eval" / "report.json")
    args = parser.parse_args(argv)
    data = yaml.safe_load(args.set.read_text(encoding="utf-8"))

    started = time.monotonic()
    with api_stack(args.url) as env, httpx.Client(
        base_url=env["MESO_API_URL"], timeout=30, auth=PatientKeys()
    ) as client:
        report = evaluate(client, data, training_texts())
    report["seconds"] = round(time.monotonic() - started, 1)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2), encoding="utf-8")
    _print(report)
    print(f"\nReport: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
