"""Issue 17's figures, each beside its target: ``make bench`` (``python -m bench.run``).

A private stack (ops.stack) starts with the rate limits off; the client runs on the same
machine. Phases, in this order so that each is measured fairly:

1. warm-up (a few conversations through the API and at Rasa's webhook; not measured);
2. one long conversation, on the idle stack: turns 56-60 against turns 1-5, measured
   side by side (a new conversation starts as the one before reaches turn 56, and their
   turns alternate) with the same questions at both ends over the run;
3. one patient alone, on the idle stack: each turn through the API, then the same text at
   Rasa's webhook (as the API calls it) and at ``/model/parse``, one request at a time;
4. 50 concurrent conversations x 7 turns through the API, no pauses, each opened within
   the load; memory (RSS) right after the first run; whether every patient message was
   stored;
5. the same scripts straight at Rasa's webhook (same openings, same turns): the API's cost.
   Phases 4 and 5 run in pairs (six by default, ``--pairs``; an unmeasured pair at full size
   first, so that no side meets the stack's first-load costs), the order alternating: the
   webhook's own rate moved by a fifth between back-to-back runs of the same code on this
   machine, more than the cost measured. The API's cost is the median of the pairs; its
   throughput the median of its runs; latencies, errors and lost messages count every run;
6. 50, then 100 conversations opened at the same moment.

Between phases the stack is left to finish its work (until its processes are idle).
Every request gives up after the chat widget's timeout (TIMEOUT_MS in widget.js); a
timeout, a 503 or any other failure is an error. Figures go to results/bench/report.json;
the exit code is 1 when a target is missed. The targets are in ``bench.figures.TARGETS``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import yaml

from bench import figures as fig
from bench import load, procs
from bench.scale import wait_stored

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "questions.yml"
WIDGET_JS = ROOT / "api" / "static" / "widget" / "widget.js"
RATE_LIMITS_OFF = {
    "MESO_RATE_LIMIT_MESSAGES_PER_MINUTE": "0",
    "MESO_RATE_LIMIT_CONVERSATIONS_PER_MINUTE": "0",
}
LONG_EDGE = 5
"""Turns compared at each end of the long conversation (1-5 against the last five)."""
LONG_HANDOVERS = 5
"""Late windows measured beside an early one (bench.figures.chain_scripts)."""
IDLE_LIMIT_S = 20.0
"""The longest wait, between phases, for the stack to finish the last phase's work."""


def _calls(calls: load.Calls) -> dict[str, Any]:
    """Latencies of every request (a failure counts its wait), of the answered ones apart."""
    return {**fig.latency_ms(calls.latencies), "answered": fig.latency_ms(calls.answered),
            "errors": len(calls.errors),
            "error_kinds": {k: calls.errors.count(k) for k in sorted(set(calls.errors))}}


def _load_summary(record: load.Record, seconds: float, client_cpu: float, stack_cpu: float) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 2),
        "turns_per_s": fig.rate(record.turns.ok, seconds),
        "openings_per_s": fig.rate(record.openings.ok, seconds),
        "requests_per_s": fig.rate(record.turns.ok + record.openings.ok, seconds),
        "turns": _calls(record.turns),
        "openings": _calls(record.openings),
        "turns_not_sent": record.not_sent,
        "errors": len(record.turns.errors) + len(record.openings.errors),
        "client_cpu_s": round(client_cpu, 1),
        "stack_cores_used": round(stack_cpu / seconds, 2) if seconds else fig.NAN,
    }


def _pooled(records: Sequence[load.Record], runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The load runs of one side together: the median run's rates, every run's requests."""
    turns, openings = load.Calls(), load.Calls()
    for record in records:
        turns.extend(record.turns)
        openings.extend(record.openings)
    return {
        "runs": len(runs),
        "turns_per_s": fig.median_of([run["turns_per_s"] for run in runs]),
        "requests_per_s": fig.median_of([run["requests_per_s"] for run in runs]),
        "turns": _calls(turns),
        "openings": _calls(openings),
        "turns_not_sent": sum(record.not_sent for record in records),
        "errors": len(turns.errors) + len(openings.errors),
    }


class Phases:
    """The running stack and what the benchmark measures on it."""

    def __init__(self, env: dict[str, str], timeout_s: float) -> None:
        self.env, self.timeout_s = env, timeout_s
        self.api_url, self.rasa_url = env["MESO_API_URL"], env["MESO_RASA_URL"]
        self.token = env["MESO_RASA_TOKEN"]
        self.pids = [int(p) for p in env["_MESO_PIDS"].split(",")]
        self.database_url = env["MESO_DATABASE_URL"]

    def idle(self) -> None:
        waited = procs.wait_idle(self.pids, limit=IDLE_LIMIT_S)
        if waited >= IDLE_LIMIT_S:
            print(f"  (the stack was still busy after {waited:.0f} s; measuring anyway)", flush=True)

    async def warm_up(self, pool: list[str], seed: int) -> None:
        scripts = fig.conversation_scripts(pool, 4, 4, seed)
        async with load.api(self.api_url, self.timeout_s, 4) as api, \
                load.webhook(self.rasa_url, self.token, self.timeout_s, 4) as hook, \
                load.parse(self.rasa_url, self.token, self.timeout_s) as nlu:
            await load.concurrent(api, scripts)
            await load.concurrent(hook, scripts)
            await load.interleaved([nlu], scripts[:1])

    async def long(self, scripts: list[list[str]]) -> list[load.Record]:
        async with load.api(self.api_url, self.timeout_s, 2) as api:
            return await load.handover_chain(api, scripts, LONG_EDGE)

    async def alone(self, script: list[str]) -> list[load.Record]:
        async with load.api(self.api_url, self.timeout_s) as api, \
                load.webhook(self.rasa_url, self.token, self.timeout_s) as hook, \
                load.parse(self.rasa_url, self.token, self.timeout_s) as nlu:
            return await load.interleaved([api, hook, nlu], [script] * 3)

    def concurrent(self, at_api: bool, scripts: list[list[str]]) -> tuple[load.Record, dict[str, Any]]:
        async def run() -> tuple[load.Record, float]:
            if at_api:
                async with load.api(self.api_url, self.timeout_s, len(scripts)) as api:
                    return await load.concurrent(api, scripts)
            async with load.webhook(self.rasa_url, self.token, self.timeout_s, len(scripts)) as hook:
                return await load.concurrent(hook, scripts)

        client_before, stack_before = time.process_time(), procs.cpu_seconds(self.pids)
        record, seconds = asyncio.run(run())
        client = time.process_time() - client_before
        stack = procs.cpu_seconds(self.pids) - stack_before
        return record, _load_summary(record, seconds, client, stack)

    def burst(self, count: int) -> dict[str, Any]:
        async def run() -> load.Calls:
            async with load.api(self.api_url, self.timeout_s, count) as api:
                return await load.burst(api, count)

        return {"conversations": count, **_calls(asyncio.run(run()))}


def _print_header(args: argparse.Namespace, timeout_s: float) -> None:
    limits = ", ".join(f"{k}={v}" for k, v in RATE_LIMITS_OFF.items())
    load1, load5, _ = os.getloadavg()
    print("make bench: issue 17's figures, each beside its target")
    print(f"  rate limits OFF ({limits})")
    print(f"  {os.cpu_count()} cores; the client runs on the same machine and shares them "
          f"(load average {load1:.1f} / {load5:.1f} at the start: others may be using them)")
    print(f"  every request gives up after {timeout_s:g} s (the widget's TIMEOUT_MS); "
          "a timeout, a 503 or any other failure counts as an error")
    print(f"  load: {args.users} conversations x {args.turns} turns, each opened within the load "
          f"(POST /api/v1/conversations, consent true); seed {args.seed}\n", flush=True)


def _line(text: str) -> None:
    print(text, flush=True)


def _figures(report: dict[str, Any]) -> dict[str, float]:
    api = report["load"]["api"]
    return {
        "load_turns_per_s": api["turns_per_s"],
        "load_p95_ms": api["turns"]["p95_ms"],
        "load_errors": api["errors"] + report["load"]["warm_up"]["api"]["errors"],
        "load_lost": report["load"]["stored"]["lost"],
        "burst_errors": report["bursts"]["large"]["errors"],
        "burst_p95_ms": report["bursts"]["large"]["p95_ms"],
        "single_api_p50_ms": report["one_patient"]["api"]["p50_ms"],
        "overhead_p50": fig.median_of([p["p50_added"] for p in report["load"]["pairs"]]),
        "overhead_throughput": fig.median_of([p["throughput_lost"] for p in report["load"]["pairs"]]),
        "memory_total_mb": report["memory_mb"]["total"],
        "long_growth": report["long_conversation"]["growth_median"],
    }


def _memory(mb: dict[str, float]) -> str:
    return ", ".join(f"{name} {value} MB" for name, value in mb.items())


def _context(report: dict[str, Any]) -> dict[str, str]:
    """What each printed target line is measured against, from the same run."""
    api, hook = report["load"]["api"], report["load"]["rasa_webhook"]
    pairs = report["load"]["pairs"]
    one, long_ = report["one_patient"], report["long_conversation"]
    mem = report["memory_mb"]
    return {
        "load_turns_per_s": f"median of {api['runs']} runs; webhook {hook['turns_per_s']} msg/s; with openings "
                            f"{api['requests_per_s']} req/s",
        "load_p95_ms": f"p50 {api['turns']['p50_ms']} ms; webhook p95 {hook['turns']['p95_ms']} ms",
        "load_errors": f"turns {api['turns']['errors']} {api['turns']['error_kinds'] or ''}, openings "
                       f"{api['openings']['errors']} {api['openings']['error_kinds'] or ''}, warm-up "
                       f"{report['load']['warm_up']['api']['errors']}; webhook {hook['errors']}",
        "burst_errors": f"{report['bursts']['large']['error_kinds'] or 'none'}",
        "load_lost": f"{report['load']['stored']['patient_messages_stored']} stored of "
                     f"{report['load']['stored']['sent']} sent",
        "burst_p95_ms": f"50 at once: p95 {report['bursts']['small']['p95_ms']} ms, "
                        f"{report['bursts']['small']['errors']} errors",
        "single_api_p50_ms": f"webhook {one['rasa_webhook']['p50_ms']} ms, /model/parse "
                             f"{one['model_parse']['p50_ms']} ms; API/webhook "
                             f"{fig.format_value(one['api_vs_webhook_p50'], 'ratio')}",
        "overhead_p50": f"median of {len(pairs)} pairs: " + ", ".join(
            fig.format_value(p["p50_added"], "ratio") for p in pairs)
                        + ("" if api["errors"] + hook["errors"] == 0 else
                           f"; not comparable with {api['errors'] + hook['errors']} errors"),
        "overhead_throughput": f"median of {len(pairs)} pairs: " + ", ".join(
            f"{fig.format_value(p['throughput_lost'], 'ratio')} ({p['api_turns_per_s']} vs "
            f"{p['webhook_turns_per_s']})" for p in pairs),
        "memory_total_mb": _memory({k: v for k, v in mem.items() if k != "total"}),
        "long_growth": f"median {long_['late']['p50_ms']} vs {long_['early']['p50_ms']} ms, "
                       f"mean {long_['late']['mean_ms']} vs {long_['early']['mean_ms']} ms",
    }


def _print_table(rows: Sequence[fig.Row], context: dict[str, str]) -> None:
    print("\nTargets (issue 17; sizes as in the issue: 50 users x 7 turns, 100 at once)")
    for row in rows:
        verdict = "met" if row.met else "MISSED"
        target = f"{row.comparison} {fig.format_value(row.target, row.unit)}"
        print(f"  {verdict:6} {row.label:62} {fig.format_value(row.value, row.unit):>12}  "
              f"(target {target}; {context.get(row.name, '')})")
    missed = sum(not r.met for r in rows)
    print(f"\n{len(rows) - missed} of {len(rows)} targets met" + (f", {missed} missed" if missed else ""))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def measure(args: argparse.Namespace, timeout_s: float, pool: list[str]) -> dict[str, Any]:
    """Start the stack, run every phase, return the report (without the target rows)."""
    from ops.stack import private_stack

    report: dict[str, Any] = {
        "settings": {"cores": os.cpu_count(), "client": "same machine", "rate_limits": RATE_LIMITS_OFF,
                     "users": args.users, "turns": args.turns, "seed": args.seed,
                     "request_timeout_s": timeout_s, "load_average_at_start": os.getloadavg()[:2],
                     "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
    }
    _line(f"Starting a private stack (action server, Rasa, API) at {report['settings']['started_at']}…")
    started = time.monotonic()
    with private_stack(**RATE_LIMITS_OFF) as env:
        report["stack_start_s"] = round(time.monotonic() - started, 1)
        _line(f"  ready in {report['stack_start_s']} s (processes only; environments, model and "
              "knowledge base already built)")
        phases = Phases(env, timeout_s)

        _line("Warm-up (not measured)…")
        asyncio.run(phases.warm_up(pool, args.seed + 99))
        phases.idle()

        _line(f"One long conversation ({args.long_turns} turns; {LONG_HANDOVERS} in a row, each next one's "
              f"first {LONG_EDGE} turns alternating with the last {LONG_EDGE} of the one before)…")
        edge_late = args.long_turns - LONG_EDGE + 1
        records = asyncio.run(phases.long(
            fig.chain_scripts(pool, args.long_turns, LONG_EDGE, LONG_HANDOVERS, args.seed + 2)))
        early = fig.turn_window([t for r in records[1:] for t in r.per_turn], 1, LONG_EDGE)
        late = fig.turn_window([t for r in records[:-1] for t in r.per_turn], edge_late, args.long_turns)
        report["long_conversation"] = {
            "turns": args.long_turns, "conversations": len(records), "handovers": LONG_HANDOVERS,
            "early_turns": f"1-{LONG_EDGE}", "late_turns": f"{edge_late}-{args.long_turns}",
            "early": fig.latency_ms(early), "late": fig.latency_ms(late),
            "errors": sum(len(r.turns.errors) + len(r.openings.errors) for r in records),
        }
        lc = report["long_conversation"]
        lc["growth_median"] = fig.added_latency(lc["late"]["p50_ms"], lc["early"]["p50_ms"])
        lc["growth_mean"] = fig.added_latency(lc["late"]["mean_ms"], lc["early"]["mean_ms"])
        _line(f"  turns {lc['late_turns']}: median {lc['late']['p50_ms']} ms; turns {lc['early_turns']}: "
              f"{lc['early']['p50_ms']} ms ({fig.format_value(lc['growth_median'], 'ratio')}); "
              f"errors {lc['errors']}")
        phases.idle()

        _line(f"One patient alone ({args.single} turns; API, Rasa's webhook and /model/parse in turn)…")
        api_one, hook_one, parse_one = asyncio.run(
            phases.alone(fig.conversation_scripts(pool, 1, args.single, args.seed + 1)[0]))
        one = {"api": _calls(api_one.turns), "rasa_webhook": _calls(hook_one.turns),
               "model_parse": _calls(parse_one.turns),
               "api_opening_ms": fig.latency_ms(api_one.openings.latencies)["p50_ms"]}
        one["api_vs_webhook_p50"] = fig.comparable_added_latency(
            one["api"]["p50_ms"], one["rasa_webhook"]["p50_ms"], one["api"]["errors"] + one["rasa_webhook"]["errors"])
        report["one_patient"] = one
        _line(f"  p50 per turn: API {one['api']['p50_ms']} ms, webhook {one['rasa_webhook']['p50_ms']} ms, "
              f"/model/parse {one['model_parse']['p50_ms']} ms; errors "
              f"{sum(one[k]['errors'] for k in ('api', 'rasa_webhook', 'model_parse'))}")
        phases.idle()

        # One pair at full size first, not measured: the first measured run would otherwise
        # meet whatever the stack does once only, and always on the API's side.
        _line(f"{args.users} conversations x {args.turns} turns through the API, then at the webhook: "
              "warming up, not measured…")
        warm_scripts = fig.conversation_scripts(pool, args.users, args.turns, args.seed + 3)
        warm_up: dict[str, Any] = {}
        for at_api in (True, False):
            record, summary = phases.concurrent(at_api, warm_scripts)
            if at_api:  # its errors and lost messages count all the same
                warm_up["stored"] = wait_stored(phases.database_url, record.handles, len(record.turns.latencies))
            warm_up["api" if at_api else "rasa_webhook"] = summary
            phases.idle()
        _line(f"  API {warm_up['api']['turns_per_s']} msg/s, errors {warm_up['api']['errors']}, lost "
              f"{warm_up['stored']['lost']}; webhook {warm_up['rasa_webhook']['turns_per_s']} msg/s, errors "
              f"{warm_up['rasa_webhook']['errors']}")

        scripts = fig.conversation_scripts(pool, args.users, args.turns, args.seed)
        api_records: list[load.Record] = []
        hook_records: list[load.Record] = []
        api_runs: list[dict[str, Any]] = []
        hook_runs: list[dict[str, Any]] = []
        stored_runs: list[dict[str, Any]] = []
        for pair in range(args.pairs):
            # The order alternates, so that neither side is always measured first.
            for at_api in (True, False) if pair % 2 == 0 else (False, True):
                where = "through the API" if at_api else "straight at Rasa's webhook"
                _line(f"{args.users} conversations x {args.turns} turns {where}, no pauses "
                      f"(pair {pair + 1} of {args.pairs})…")
                record, summary = phases.concurrent(at_api, scripts)
                if at_api:
                    if not api_runs:
                        report["memory_mb"] = procs.rss_mb(phases.pids)
                        _line(f"  memory right after: {_memory(report['memory_mb'])}")
                    stored = wait_stored(phases.database_url, record.handles, len(record.turns.latencies))
                    api_records.append(record)
                    api_runs.append(summary)
                    stored_runs.append(stored)
                    _line(f"  {summary['turns_per_s']} msg/s (turns; openings not counted, their time is: "
                          f"{summary['requests_per_s']} req/s with them), p50 {summary['turns']['p50_ms']} ms, "
                          f"p95 {summary['turns']['p95_ms']} ms, errors {summary['errors']}; openings p50 "
                          f"{summary['openings']['p50_ms']} ms, p95 {summary['openings']['p95_ms']} ms; "
                          f"patient messages lost: {stored['lost']} of {stored['sent']}")
                else:
                    hook_records.append(record)
                    hook_runs.append(summary)
                    _line(f"  {summary['turns_per_s']} msg/s, p50 {summary['turns']['p50_ms']} ms, "
                          f"p95 {summary['turns']['p95_ms']} ms, errors {summary['errors']}")
                _line(f"  client CPU {summary['client_cpu_s']} s, stack {summary['stack_cores_used']} cores busy "
                      "on average")
                phases.idle()
        pairs = fig.paired(api_runs, hook_runs)
        report["load"] = {
            "pairs": pairs,
            "api": _pooled(api_records, api_runs),
            "rasa_webhook": _pooled(hook_records, hook_runs),
            "api_runs": api_runs,
            "rasa_webhook_runs": hook_runs,
            "stored": {key: sum(run[key] for run in [warm_up["stored"], *stored_runs])
                       for key in ("sent", "patient_messages_stored", "answered", "lost")},
            "warm_up": warm_up,
            "counting": "msg/s counts answered turns only; the wall time includes each conversation's "
                        "opening (reported apart). Throughput: the median of the runs; latencies and "
                        "errors: every run's turns together; the API's cost: the median of the pairs.",
        }
        _line("  pairs (API against webhook): " + "; ".join(
            f"{p['api_turns_per_s']} vs {p['webhook_turns_per_s']} msg/s, p50 {p['api_p50_ms']} vs "
            f"{p['webhook_p50_ms']} ms" for p in pairs))

        report["bursts"] = {}
        for key, count in (("small", args.small_burst), ("large", args.burst)):
            _line(f"{count} conversations opened at the same moment…")
            report["bursts"][key] = phases.burst(count)
            b = report["bursts"][key]
            _line(f"  p50 {b['p50_ms']} ms, p95 {b['p95_ms']} ms, errors {b['errors']} {b['error_kinds'] or ''}")
            phases.idle()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50, help="concurrent conversations (50)")
    parser.add_argument("--turns", type=int, default=7, help="messages per conversation (7)")
    parser.add_argument("--single", type=int, default=40, help="messages for the one-patient latency (40)")
    parser.add_argument("--long-turns", type=int, default=60, help="messages of the long conversation (60)")
    parser.add_argument("--burst", type=int, default=100, help="conversations opened at once, the target (100)")
    parser.add_argument("--small-burst", type=int, default=50, help="the same, for information (50)")
    parser.add_argument("--pairs", type=int, default=6,
                        help="load runs through the API, each beside one at the webhook (6)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--report", type=Path, default=None,
                        help="where the figures go (results/bench/report.json; with --scale, scale.json)")
    parser.add_argument("--scale", action="store_true",
                        help="issue 18's figures instead: the scaled set-up against the single one (bench.scale)")
    parser.add_argument("--runs", type=int, default=3, help="with --scale: measured loads per set-up (3)")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1 (each pair is one API run beside one webhook run)")
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    timeout_s = fig.widget_timeout_s(WIDGET_JS.read_text(encoding="utf-8"))
    pool = fig.text_pool(yaml.safe_load(QUESTIONS.read_text(encoding="utf-8")))
    if args.scale:
        return _scale(args, timeout_s, pool)
    args.report = args.report or ROOT / "results" / "bench" / "report.json"
    _print_header(args, timeout_s)
    began = time.monotonic()
    report = measure(args, timeout_s, pool)
    rows = fig.evaluate(_figures(report))
    report["targets"] = [dataclasses.asdict(row) for row in rows]
    report["all_met"] = all(r.met for r in rows)
    report["bench_seconds"] = round(time.monotonic() - began, 1)
    _print_table(rows, _context(report))
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(_json_safe(report), indent=2), encoding="utf-8")
    print(f"Report: {args.report} ({report['bench_seconds']:.0f} s in all)")
    return fig.exit_code(rows)


def _scale(args: argparse.Namespace, timeout_s: float, pool: list[str]) -> int:
    """``--scale``: issue 18's comparison (``bench.scale``), printed and written."""
    from bench import scale

    load1, load5, _ = os.getloadavg()
    print("make bench --scale: the scaled set-up against the single one, same machine, one after the other")
    print(f"  rate limits OFF; {os.cpu_count()} cores shared with the client (load average {load1:.1f} / "
          f"{load5:.1f} at the start); every request gives up after {timeout_s:g} s")
    print(f"  load: {args.users} conversations x {args.turns} turns through the API, {args.runs} measured "
          f"runs each (the median counts), then {args.burst} conversations opened at once\n", flush=True)
    began = time.monotonic()
    report, targets = scale.run(args, timeout_s, pool, RATE_LIMITS_OFF, _line)
    print("\nTargets (issue 18)")
    for label, met, value in targets:
        print(f"  {'met' if met else 'MISSED':6} {label:50} {value}")
    report["targets"] = [{"label": label, "met": met, "value": value} for label, met, value in targets]
    report["all_met"] = all(met for _, met, _ in targets)
    report["bench_seconds"] = round(time.monotonic() - began, 1)
    out = args.report or ROOT / "results" / "bench" / "scale.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_json_safe(report), indent=2), encoding="utf-8")
    print(f"Report: {out} ({report['bench_seconds']:.0f} s in all)")
    return 0 if report["all_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
