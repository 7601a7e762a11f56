"""Concurrent simulated patients through the public API, and the same load straight at Rasa.

``python -m bench.run`` starts a private stack (ops.stack) with rate limits off, then:

1. one patient alone (sequential messages): p50 latency;
2. N concurrent patients, each a multi-turn conversation, through the API: messages/s,
   p50/p95 latency, errors, and messages sent vs stored in the database;
3. the same conversations straight at Rasa's webhook (the channel the API uses), for the
   API's overhead;
4. memory (RSS) of all processes together, and seconds from start to ready.

Figures are printed and written to results/bench/report.json; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import yaml

from api.patient_auth import PatientKeys
from contract.channel import AUTH_HEADER, auth_value

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "questions.yml"


def _scripts(count: int, turns: int, seed: int) -> list[list[str]]:
    data = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))
    pool = [q["text"] for q in data["questions"]] + [f["text"] for f in data.get("followups", [])]
    rng = random.Random(seed)
    return [["hi"] + rng.sample(pool, turns - 2) + ["thanks, bye"] for _ in range(count)]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Load:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.sent = 0


async def _api_patient(client: httpx.AsyncClient, script: list[str], load: Load, ids: list[str]) -> None:
    response = await client.post("/api/v1/conversations", json={"consent": True})
    if response.status_code != 201:
        load.errors.append(f"create {response.status_code}")
        return
    cid = response.json()["conversation_id"]
    ids.append(cid)
    for text in script:
        started = time.perf_counter()
        load.sent += 1
        try:
            response = await client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
        except httpx.HTTPError as exc:
            load.errors.append(type(exc).__name__)
            continue
        load.latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            load.errors.append(str(response.status_code))


async def _rasa_patient(client: httpx.AsyncClient, script: list[str], load: Load, ids: list[str]) -> None:
    sender = secrets.token_urlsafe(32)
    ids.append(sender)
    for text in script:
        started = time.perf_counter()
        load.sent += 1
        try:
            response = await client.post("/webhooks/meso/webhook",
                                         json={"sender": sender, "message": text, "command": False})
        except httpx.HTTPError as exc:
            load.errors.append(type(exc).__name__)
            continue
        load.latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            load.errors.append(str(response.status_code))


async def _run(base_url: str, scripts: list[list[str]],
               patient: Callable[[httpx.AsyncClient, list[str], Load, list[str]], Awaitable[None]],
               headers: dict[str, str] | None = None) -> tuple[Load, float, list[str]]:
    load, ids = Load(), []
    limits = httpx.Limits(max_connections=len(scripts) + 5, max_keepalive_connections=len(scripts) + 5)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=30, limits=limits, headers=headers, auth=PatientKeys()
    ) as client:
        started = time.perf_counter()
        await asyncio.gather(*(patient(client, s, load, ids) for s in scripts))
        elapsed = time.perf_counter() - started
    return load, elapsed, ids


def _summary(load: Load, elapsed: float) -> dict[str, Any]:
    return {
        "messages": load.sent,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(len(load.latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(_percentile(load.latencies, 0.50) * 1000, 1),
        "p95_ms": round(_percentile(load.latencies, 0.95) * 1000, 1),
        "errors": len(load.errors),
        "error_kinds": sorted(set(load.errors)),
    }


def _stored(db_path: Path, ids: list[str]) -> dict[str, int]:
    db = sqlite3.connect(db_path)
    marks = ",".join("?" * len(ids))
    patient = db.execute(f"SELECT COUNT(*) FROM messages WHERE role='patient' AND conversation_id IN ({marks})", ids).fetchone()[0]
    answered = db.execute(f"SELECT COUNT(*) FROM messages WHERE role='patient' AND status='answered' AND conversation_id IN ({marks})", ids).fetchone()[0]
    return {"patient_messages_stored": patient, "answered": answered}


def _rss_mb(pids: list[int]) -> float:
    """Resident memory of the given processes and all their descendants, in MB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    total_kb, todo, seen = 0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return round(total_kb / 1024, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--users", type=int, default=50, help="concurrent conversations")
    parser.add_argument("--turns", type=int, default=8, help="messages per conversation")
    parser.add_argument("--single", type=int, default=40, help="messages for the one-user latency")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--report", type=Path, default=ROOT / "results" / "bench" / "report.json")
    args = parser.parse_args(argv)

    from ops.stack import private_stack

    print(f"Starting a private stack ({os.cpu_count()} cores)…", flush=True)
    started = time.monotonic()
    with private_stack(MESO_RATE_LIMIT_CONVERSATIONS_PER_MINUTE="0",
                       MESO_RATE_LIMIT_MESSAGES_PER_MINUTE="0") as env:
        ready_s = time.monotonic() - started
        api_url, rasa_url = env["MESO_API_URL"], env["MESO_RASA_URL"]
        pids = [int(p) for p in env["_MESO_PIDS"].split(",")]
        db_path = Path(env["MESO_VAR_DIR"]) / "meso.db"

        asyncio.run(_run(api_url, _scripts(4, 4, args.seed + 99), _api_patient))  # warm-up
        single_script = _scripts(1, args.single, args.seed + 1)
        single, single_s, _ = asyncio.run(_run(api_url, single_script, _api_patient))
        scripts = _scripts(args.users, args.turns, args.seed)
        via_api, api_s, ids = asyncio.run(_run(api_url, scripts, _api_patient))
        stored = _stored(db_path, ids)
        rss = _rss_mb(pids)
        # The meso channel, as the API calls it: with Rasa's token (it refuses anyone else).
        channel_auth = {AUTH_HEADER: auth_value(env["MESO_RASA_TOKEN"])}
        direct, rasa_s, _ = asyncio.run(_run(rasa_url, scripts, _rasa_patient, channel_auth))

    api, rasa = _summary(via_api, api_s), _summary(direct, rasa_s)
    report = {
        "cores": os.cpu_count(),
        "users": args.users, "turns": args.turns,
        "one_user": _summary(single, single_s),
        "api": {**api, "sent": via_api.sent, **stored},
        "rasa_webhook": rasa,
        "api_overhead_throughput": round(1 - api["messages_per_s"] / rasa["messages_per_s"], 3) if rasa["messages_per_s"] else None,
        "api_overhead_p50": round(api["p50_ms"] / rasa["p50_ms"] - 1, 3) if rasa["p50_ms"] else None,
        "memory_mb_all_processes": rss,
        "seconds_to_ready": round(ready_s, 1),
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2), encoding="utf-8")
    one = report["one_user"]
    print(f"\nOne patient alone: p50 {one['p50_ms']} ms, p95 {one['p95_ms']} ms (target p50 <= 100 ms)")
    print(f"{args.users} concurrent patients x {args.turns} messages through the API: "
          f"{api['messages_per_s']} msg/s, p50 {api['p50_ms']} ms, p95 {api['p95_ms']} ms, errors {api['errors']} "
          f"(targets >= 40 msg/s, p95 <= 1500 ms, 0 errors)")
    print(f"  sent {via_api.sent}, stored {stored['patient_messages_stored']} patient messages "
          f"({stored['answered']} answered): lost {via_api.sent - stored['patient_messages_stored']}")
    print(f"Same load straight at Rasa's webhook: {rasa['messages_per_s']} msg/s, p50 {rasa['p50_ms']} ms, "
          f"p95 {rasa['p95_ms']} ms, errors {rasa['errors']}")
    if report["api_overhead_throughput"] is not None:
        print(f"API overhead: {report['api_overhead_throughput']:.1%} less throughput, "
              f"{report['api_overhead_p50']:.1%} more p50 latency (target <= 10%)")
    print(f"Memory of all processes after the API run: {rss} MB (target <= 1536 MB)")
    print(f"Seconds from start to ready (processes only; environments and model already built): {report['seconds_to_ready']}")
    print(f"Report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
