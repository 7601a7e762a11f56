"""Issue 18's figures: the scaled set-up against the single one, in the same run
(``make bench BENCH_ARGS=--scale``, ``python -m bench.run --scale``).

The single set-up (SQLite, one process of each) starts first, then the scaled one
(``ops.scale``: PostgreSQL, Redis, 2 action servers, 2 Rasa replicas, an API of 2 workers),
each on spare ports with the rate limits off, one at a time on the same cores. Each gets
the same phases: a warm-up, one unmeasured load at full size, ``runs`` measured loads of
``users`` conversations x ``turns`` turns through the API (each opened within the load, no
pauses), memory right after the first, then ``burst`` conversations opened at once. Lost
messages are counted in each set-up's own database. Targets (the issue's): the scaled
set-up loses nothing, answers without errors and keeps at least 75% of the single set-up's
throughput (on 2 cores it is not expected to be faster). Report: results/bench/scale.json;
exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import bindparam, text

from api.db import create_engine
from api.settings import normalise_database_url
from bench import figures as fig
from bench import load, procs

THROUGHPUT_KEPT = 0.75
"""The share of the single set-up's throughput the scaled one must keep (the issue's 25%)."""

_STORED = text(
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'answered' THEN 1 ELSE 0 END), 0) "
    "FROM messages WHERE role = 'patient' AND conversation_id IN :ids"
).bindparams(bindparam("ids", expanding=True))


async def stored(database_url: str, ids: list[str]) -> tuple[int, int]:
    """(patient messages, answered ones) stored for these conversations, in any database."""
    if not ids:
        return 0, 0
    engine = create_engine(normalise_database_url(database_url))
    try:
        async with engine.connect() as connection:
            count, answered = (await connection.execute(_STORED, {"ids": ids})).one()
            return int(count), int(answered)
    finally:
        await engine.dispose()


STORE_WAIT_S = 10.0
"""How long the check that nothing was lost waits for the transcript to catch up."""


def wait_stored(database_url: str, ids: list[str], sent: int) -> dict[str, Any]:
    """Patient messages stored for these conversations, waiting up to STORE_WAIT_S for the
    transcript to catch up with what was sent (the write-behind may hold a few a moment)."""
    started = time.monotonic()
    while True:
        count, answered = asyncio.run(stored(database_url, ids))
        waited = time.monotonic() - started
        if count >= sent or waited > STORE_WAIT_S:
            return {"sent": sent, "patient_messages_stored": count, "answered": answered,
                    "lost": max(0, sent - count), "waited_s": round(waited, 1)}
        time.sleep(0.5)


def _datastore_pids(servers: list[Any]) -> list[int]:
    pids = []
    for server in servers:
        try:
            pids.append(int(Path(server.pid_file).read_text().split()[0]))
        except (OSError, ValueError, IndexError, TypeError):
            continue
    return pids


def _measure(env: dict[str, str], extra_pids: list[int], args: argparse.Namespace, timeout_s: float,
             pool: list[str], say: Callable[[str], None]) -> dict[str, Any]:
    api_url = env["MESO_API_URL"]
    pids = [int(p) for p in env["_MESO_PIDS"].split(",")]

    async def run_load(scripts: list[list[str]]) -> tuple[load.Record, float]:
        async with load.api(api_url, timeout_s, len(scripts)) as api:
            return await load.concurrent(api, scripts)

    async def run_burst(count: int) -> load.Calls:
        async with load.api(api_url, timeout_s, count) as api:
            return await load.burst(api, count)

    asyncio.run(run_load(fig.conversation_scripts(pool, 4, 4, args.seed + 99)))
    procs.wait_idle(pids)
    asyncio.run(run_load(fig.conversation_scripts(pool, args.users, args.turns, args.seed + 3)))
    procs.wait_idle(pids)
    runs, turns, openings = [], load.Calls(), load.Calls()
    sent = kept = answered = 0
    memory: dict[str, float] = {}
    scripts = fig.conversation_scripts(pool, args.users, args.turns, args.seed)
    for number in range(args.runs):
        record, seconds = asyncio.run(run_load(scripts))
        if not memory:
            memory = procs.rss_mb(pids + extra_pids)
        counted = wait_stored(env["MESO_DATABASE_URL"], record.handles, len(record.turns.latencies))
        count = counted["patient_messages_stored"]
        sent, kept, answered = sent + counted["sent"], kept + count, answered + counted["answered"]
        turns.extend(record.turns)
        openings.extend(record.openings)
        runs.append(fig.rate(record.turns.ok, seconds))
        say(f"  run {number + 1}: {runs[-1]} msg/s, errors "
            f"{len(record.turns.errors) + len(record.openings.errors)}, lost {len(record.turns.latencies) - count}")
        procs.wait_idle(pids)
    burst = asyncio.run(run_burst(args.burst))
    procs.wait_idle(pids)
    return {
        "turns_per_s": fig.median_of(runs), "runs": runs,
        "turns": fig.latency_ms(turns.latencies), "openings": fig.latency_ms(openings.latencies),
        "errors": len(turns.errors) + len(openings.errors),
        "error_kinds": {k: (turns.errors + openings.errors).count(k) for k in set(turns.errors + openings.errors)},
        "sent": sent, "stored": kept, "answered": answered, "lost": max(0, sent - kept),
        "burst": {**fig.latency_ms(burst.latencies), "errors": len(burst.errors)},
        "memory_mb": memory,
    }


def run(args: argparse.Namespace, timeout_s: float, pool: list[str], rate_limits_off: dict[str, str],
        say: Callable[[str], None]) -> tuple[dict[str, Any], list[tuple[str, bool, str]]]:
    """Both set-ups, one after the other; the report and the target lines (label, met, text)."""
    from ops.scale import scaled_services
    from ops.stack import private_services

    report: dict[str, Any] = {"settings": {"users": args.users, "turns": args.turns, "runs": args.runs,
                                           "burst": args.burst, "seed": args.seed}}
    setups: list[tuple[str, Callable[[], AbstractContextManager[Any]]]] = [
        ("single", lambda: private_services(**rate_limits_off)),
        ("scaled", lambda: scaled_services(**rate_limits_off)),
    ]
    for name, start in setups:
        say(f"The {name} set-up: starting…")
        with start() as running:
            services = getattr(running, "services", running)
            extra = _datastore_pids([running.postgres, running.redis]) if name == "scaled" else []
            report[name] = _measure(services.env, extra, args, timeout_s, pool, say)
        r = report[name]
        say(f"  {r['turns_per_s']} msg/s (median), p50 {r['turns']['p50_ms']} ms, p95 {r['turns']['p95_ms']} ms, "
            f"errors {r['errors']}, lost {r['lost']} of {r['sent']}; {args.burst} at once: p95 "
            f"{r['burst']['p95_ms']} ms, errors {r['burst']['errors']}; RSS {r['memory_mb'].get('total')} MB")
    report["throughput_kept"] = throughput_kept(report["single"], report["scaled"])
    return report, targets(report["single"], report["scaled"])


def throughput_kept(single: dict[str, Any], scaled: dict[str, Any]) -> float:
    """The scaled set-up's median throughput as a share of the single one's."""
    return round(scaled["turns_per_s"] / single["turns_per_s"], 3) if single["turns_per_s"] else 0.0


def targets(single: dict[str, Any], scaled: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """The issue's targets as (label, met, what was measured)."""
    kept = throughput_kept(single, scaled)
    errors = scaled["errors"] + scaled["burst"]["errors"]
    return [
        ("scaled: patient messages lost", scaled["lost"] == 0, f"{scaled['lost']} (target 0)"),
        ("scaled: errors (turns, openings, burst)", errors == 0, f"{errors} (target 0)"),
        ("scaled: throughput kept of the single set-up's", kept >= THROUGHPUT_KEPT,
         f"{kept:.0%} ({scaled['turns_per_s']} vs {single['turns_per_s']} msg/s; target >= {THROUGHPUT_KEPT:.0%})"),
    ]
