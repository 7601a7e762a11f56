"""The benchmark's arithmetic and its targets: pure functions, nothing started, nothing timed.

``bench.run`` measures; this module turns measurements into figures (percentiles, ratios),
makes the scripts the simulated patients send, and holds issue 17's targets once, as data
that both the printout and the exit code read (:data:`TARGETS`, :func:`evaluate`).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

Comparison = Literal[">=", "<="]

NAN = float("nan")

GREETING = "hi"
"""The first message of every load conversation."""
GOODBYE = "thanks, bye"
"""The last message of every load conversation."""


@dataclass(frozen=True)
class Target:
    """One line of issue 17's table: the figure ``name`` must be ``comparison`` ``target``."""

    name: str
    label: str
    comparison: Comparison
    target: float
    unit: str = ""


MEMORY_TARGET_MB = 1.2 * 1024
"""1.2 GB for all processes together, in MB (1228.8)."""

TARGETS: tuple[Target, ...] = (
    Target("load_turns_per_s", "50 users x 7 turns through the API: throughput", ">=", 40.0, "msg/s"),
    Target("load_p95_ms", "50 users x 7 turns through the API: p95 per turn", "<=", 1600.0, "ms"),
    Target("load_errors", "50 users x 7 turns through the API: errors (openings and turns)", "<=", 0),
    Target("load_lost", "50 users x 7 turns: patient messages sent but not stored", "<=", 0),
    Target("burst_errors", "100 conversations opened at once: errors", "<=", 0),
    Target("burst_p95_ms", "100 conversations opened at once: p95 of the opening", "<=", 2000.0, "ms"),
    Target("single_api_p50_ms", "one patient alone: p50 per turn through the API", "<=", 60.0, "ms"),
    Target("overhead_p50", "API over Rasa's webhook, 50-user load: p50", "<=", 0.10, "ratio"),
    Target("overhead_throughput", "API over Rasa's webhook, 50-user load: throughput lost", "<=", 0.10, "ratio"),
    Target("memory_total_mb", "memory after the load, all processes (RSS)", "<=", MEMORY_TARGET_MB, "MB"),
    Target("long_growth", "one long conversation: turns 56-60 vs 1-5 (median)", "<=", 0.15, "ratio"),
)


@dataclass(frozen=True)
class Row:
    """A target with the value measured and whether it was met."""

    name: str
    label: str
    value: float
    target: float
    comparison: Comparison
    unit: str
    met: bool


def met(value: float | None, comparison: Comparison, target: float) -> bool:
    """True when ``value`` satisfies ``comparison target``; a missing or NaN value never does."""
    if value is None or math.isnan(value):
        return False
    if comparison == ">=":
        return value >= target
    if comparison == "<=":
        return value <= target
    raise ValueError(f"unknown comparison {comparison!r}")


def evaluate(figures: Mapping[str, float | None], targets: Sequence[Target] = TARGETS) -> list[Row]:
    """Each target with its figure (NaN when the run did not produce it) and the verdict."""
    rows = []
    for t in targets:
        value = figures.get(t.name)
        value = NAN if value is None else float(value)
        rows.append(Row(t.name, t.label, value, t.target, t.comparison, t.unit, met(value, t.comparison, t.target)))
    return rows


def exit_code(rows: Sequence[Row]) -> int:
    """0 when every target is met, 1 otherwise."""
    return 0 if all(r.met for r in rows) else 1


def format_value(value: float, unit: str) -> str:
    """A figure as printed: ratios as signed percentages, counts as integers."""
    if math.isnan(value):
        return "n/a"
    if unit == "ratio":
        return f"{value:+.1%}"
    if unit == "":
        return f"{value:.0f}"
    return f"{value:.1f} {unit}"


# --- statistics ----------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks; NaN if empty."""
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be between 0 and 1")
    if not values:
        return NAN
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else NAN


def latency_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """Count, p50, p95 and mean of latencies given in seconds, in milliseconds."""
    return {
        "count": len(seconds),
        "p50_ms": _ms(percentile(seconds, 0.50)),
        "p95_ms": _ms(percentile(seconds, 0.95)),
        "mean_ms": _ms(mean(seconds)),
    }


def _ms(seconds: float) -> float:
    return NAN if math.isnan(seconds) else round(seconds * 1000, 1)


def rate(count: int, seconds: float) -> float:
    """``count`` per second over ``seconds`` of wall time (NaN for no time)."""
    return round(count / seconds, 1) if seconds > 0 else NAN


def added_latency(value: float, baseline: float) -> float:
    """How much longer ``value`` is than ``baseline``, as a fraction (0.1 = 10% longer)."""
    if not _positive(baseline) or math.isnan(value):
        return NAN
    return value / baseline - 1


def comparable_added_latency(value: float, baseline: float, errors: int) -> float:
    """:func:`added_latency` of two medians, only when both sides answered every request
    (``errors`` is the failures of both together); NaN otherwise: a quick 503 or a timeout
    cut short would move a median, and the turns left would not be the same turns."""
    return added_latency(value, baseline) if errors == 0 else NAN


def lost_throughput(value: float, baseline: float) -> float:
    """How much lower the rate ``value`` is than ``baseline``, as a fraction (0.1 = 10% fewer)."""
    if not _positive(baseline) or math.isnan(value):
        return NAN
    return 1 - value / baseline


def median_of(values: Sequence[float]) -> float:
    """The median of per-pair figures; NaN when there are none or any one is NaN (a pair
    whose figure could not be worked out leaves the whole figure open, never a better one)."""
    if not values or any(math.isnan(v) for v in values):
        return NAN
    return percentile(values, 0.5)


def paired(api_runs: Sequence[Mapping[str, Any]], hook_runs: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Each load pair's figures, the API's run against the webhook run beside it: how much
    the API adds to the p50 per turn (:func:`comparable_added_latency`) and the share of the
    webhook's throughput it loses (:func:`lost_throughput`)."""
    if len(api_runs) != len(hook_runs):
        raise ValueError("every API run needs the webhook run of its pair")
    return [
        {
            "api_turns_per_s": api["turns_per_s"],
            "webhook_turns_per_s": hook["turns_per_s"],
            "throughput_lost": lost_throughput(api["turns_per_s"], hook["turns_per_s"]),
            "api_p50_ms": api["turns"]["p50_ms"],
            "webhook_p50_ms": hook["turns"]["p50_ms"],
            "p50_added": comparable_added_latency(api["turns"]["p50_ms"], hook["turns"]["p50_ms"],
                                                  api["errors"] + hook["errors"]),
        }
        for api, hook in zip(api_runs, hook_runs)
    ]


def _positive(value: float) -> bool:
    return not math.isnan(value) and value > 0


def turn_window(per_turn: Sequence[Sequence[float]], first: int, last: int) -> list[float]:
    """The latencies of turns ``first``..``last`` (1-based, inclusive) of every conversation."""
    if first < 1 or last < first:
        raise ValueError("turns are numbered from 1, first <= last")
    return [x for turns in per_turn for x in turns[first - 1:last]]


# --- scripts -------------------------------------------------------------------------------

def text_pool(data: Mapping[str, Any]) -> list[str]:
    """The patient texts of an evaluation set (eval/questions.yml): its questions, then its
    follow-ups, each once, in file order."""
    texts = [q["text"] for q in data.get("questions", [])] + [f["text"] for f in data.get("followups", [])]
    return list(dict.fromkeys(texts))


def conversation_scripts(pool: Sequence[str], count: int, turns: int, seed: int) -> list[list[str]]:
    """``count`` scripts of ``turns`` messages: a greeting, questions drawn from ``pool``
    (different within a script), a goodbye. The same seed gives the same scripts."""
    if turns < 2:
        raise ValueError("a conversation script has at least a greeting and a goodbye")
    rng = random.Random(seed)
    return [[GREETING, *rng.sample(list(pool), turns - 2), GOODBYE] for _ in range(count)]


def chain_scripts(pool: Sequence[str], turns: int, edge: int, handovers: int, seed: int) -> list[list[str]]:
    """Scripts for the long-conversation figure: ``handovers + 1`` conversations, each of
    ``turns`` different questions but the last, which has only its first ``edge``.

    Conversation k+1 starts as conversation k reaches its last ``edge`` turns, and the two
    windows are measured together (:func:`bench.load.handover_chain`). Over all handovers the
    late windows and the early windows ask the same questions: late window k asks set k, and
    early window k+1 asks set k-1 (set h-1 for the first), so no question is asked twice in
    one conversation or twice within a handover (a text met again at once could be answered
    from a cache of recent encodings). The middles are drawn from the other questions.
    """
    if edge < 1 or turns < 2 * edge:
        raise ValueError("a long script needs at least two edges of at least one turn")
    if handovers < 3:
        raise ValueError("at least three handovers are needed for the early and late windows to ask the same")
    rng = random.Random(seed)
    picked = rng.sample(list(pool), (handovers + 1) * edge)
    sets = [picked[k * edge:(k + 1) * edge] for k in range(handovers)]
    first_early = picked[handovers * edge:]  # conversation 0's early window is not compared
    rest = [t for t in pool if t not in picked]
    middle = turns - 2 * edge
    scripts = []
    for k in range(handovers + 1):
        early = first_early if k == 0 else sets[(k - 2) % handovers]
        if k == handovers:
            scripts.append(list(early))
        else:
            scripts.append([*early, *rng.sample(rest, middle), *sets[k]])
    return scripts


# --- the machine -----------------------------------------------------------------------------

_TIMEOUT_MS = re.compile(r"\bconst\s+TIMEOUT_MS\s*=\s*([0-9_]+)\s*;")


def widget_timeout_s(widget_js: str) -> float:
    """The chat widget's request timeout (``const TIMEOUT_MS = ...;`` in widget.js), in seconds."""
    match = _TIMEOUT_MS.search(widget_js)
    if match is None:
        raise ValueError("widget.js declares no TIMEOUT_MS")
    return int(match.group(1).replace("_", "")) / 1000


PROCESS_NAMES = (("bot.rasa_server", "rasa"), ("bot.action_server", "action server"),
                 ("api.serve", "api"))
"""What a stack process's command line contains, and the name it is reported under."""


def process_name(argv: Sequence[str]) -> str:
    """The stack process a command line (``/proc/<pid>/cmdline`` split at NULs) belongs to."""
    for marker, name in PROCESS_NAMES:
        if any(marker in arg for arg in argv):
            return name
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return argv[0].rsplit("/", 1)[-1] if argv else "?"
