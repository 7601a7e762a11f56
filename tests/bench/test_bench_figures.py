"""The benchmark's arithmetic, scripts and targets (bench/figures.py) and the order of its
requests (bench/load.py): nothing started, nothing timed."""

from __future__ import annotations

import asyncio
import math
from collections import Counter

import pytest

from bench import figures as fig
from api.safety_net import OPENING_UNAVAILABLE, OTHERWISE_UNAVAILABLE
from bench.load import Outcome, safety_net_reply, handover_chain
from bench.run import WIDGET_JS, _figures


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert fig.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert fig.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.95) == pytest.approx(4.8)
    assert fig.percentile([7.0], 0.95) == 7.0
    assert fig.percentile([1.0, 9.0], 0.0) == 1.0 and fig.percentile([1.0, 9.0], 1.0) == 9.0
    assert math.isnan(fig.percentile([], 0.5))
    with pytest.raises(ValueError):
        fig.percentile([1.0], 95)


def test_latencies_are_reported_in_milliseconds() -> None:
    summary = fig.latency_ms([0.1, 0.2, 0.3])
    assert summary == {"count": 3, "p50_ms": 200.0, "p95_ms": 290.0, "mean_ms": 200.0}
    assert math.isnan(fig.latency_ms([])["p50_ms"])


def test_ratios_say_how_much_the_api_adds_and_nan_without_a_baseline() -> None:
    assert fig.added_latency(110.0, 100.0) == pytest.approx(0.10)
    assert fig.added_latency(90.0, 100.0) == pytest.approx(-0.10)
    assert fig.lost_throughput(36.0, 40.0) == pytest.approx(0.10)
    assert fig.lost_throughput(44.0, 40.0) == pytest.approx(-0.10)
    assert math.isnan(fig.added_latency(100.0, 0.0))
    assert math.isnan(fig.lost_throughput(10.0, fig.NAN))
    assert fig.rate(70, 2.0) == 35.0 and math.isnan(fig.rate(3, 0.0))


def test_a_target_is_met_only_by_a_real_value_on_its_side() -> None:
    assert fig.met(40.0, ">=", 40.0) and not fig.met(39.9, ">=", 40.0)
    assert fig.met(0, "<=", 0) and not fig.met(1, "<=", 0)
    assert not fig.met(fig.NAN, "<=", 100.0) and not fig.met(None, ">=", 0.0)


def test_the_exit_code_fails_on_a_missed_or_missing_figure() -> None:
    targets = (fig.Target("a", "A", ">=", 40.0, "msg/s"), fig.Target("b", "B", "<=", 0))
    assert fig.exit_code(fig.evaluate({"a": 41.0, "b": 0}, targets)) == 0
    missed = fig.evaluate({"a": 39.0, "b": 0}, targets)
    assert [r.met for r in missed] == [False, True] and fig.exit_code(missed) == 1
    missing = fig.evaluate({"a": 41.0}, targets)
    assert math.isnan(missing[1].value) and fig.exit_code(missing) == 1


def test_the_targets_are_issue_17s() -> None:
    by_name = {t.name: (t.comparison, t.target) for t in fig.TARGETS}
    assert by_name == {
        "load_turns_per_s": (">=", 40.0), "load_p95_ms": ("<=", 1600.0), "load_errors": ("<=", 0),
        "load_lost": ("<=", 0), "burst_errors": ("<=", 0), "burst_p95_ms": ("<=", 2000.0),
        "single_api_p50_ms": ("<=", 60.0), "overhead_p50": ("<=", 0.10),
        "overhead_throughput": ("<=", 0.10), "memory_total_mb": ("<=", 1228.8), "long_growth": ("<=", 0.15),
    }


def _report(api_errors: tuple[int, int, int] = (0, 0, 0), warm_up_errors: int = 0) -> dict:
    latency = {"p50_ms": 50.0, "p95_ms": 90.0, "mean_ms": 55.0}
    calls = {**latency, "answered": latency, "errors": 0, "error_kinds": {}}
    load = {"turns_per_s": 45.0, "requests_per_s": 50.0, "turns": calls, "openings": calls, "errors": 0}
    # Three pairs: the API loses 1-45/48, 1-44/50 and 1-47/48 of the throughput, adds 5%, 16.7% and 1.7%.
    api_runs = [{**load, "turns_per_s": rate, "turns": {**calls, "p50_ms": p50}, "errors": errors}
                for rate, p50, errors in zip((45.0, 44.0, 47.0), (63.0, 70.0, 61.0), api_errors)]
    hook_runs = [{**load, "turns_per_s": rate, "turns": {**calls, "p50_ms": 60.0}} for rate in (48.0, 50.0, 48.0)]
    return {
        "load": {"api": {**load, "runs": 3, "errors": sum(api_errors)},
                 "rasa_webhook": {**load, "runs": 3, "turns_per_s": 48.0},
                 "pairs": fig.paired(api_runs, hook_runs),
                 "stored": {"lost": 0, "sent": 350, "patient_messages_stored": 350},
                 "warm_up": {"api": {**load, "errors": warm_up_errors}, "rasa_webhook": load}},
        "bursts": {"large": calls, "small": calls},
        "one_patient": {"api": calls, "rasa_webhook": calls, "model_parse": calls, "api_vs_webhook_p50": 0.0},
        "memory_mb": {"api": 100.0, "total": 1000.0},
        "long_conversation": {"growth_median": 0.05},
    }


def test_every_target_gets_its_figure_from_a_report() -> None:
    figures = _figures(_report())
    assert set(figures) == {t.name for t in fig.TARGETS}
    rows = {r.name: r for r in fig.evaluate(figures)}
    assert rows["overhead_throughput"].value == pytest.approx(1 - 45 / 48)  # the median pair
    assert rows["overhead_p50"].value == pytest.approx(0.05)
    assert all(r.met for r in rows.values())


def test_the_p50_overhead_is_missed_when_either_side_failed_a_request() -> None:
    """Failed turns (the API's 503 after Rasa's timeout) would cut its median short."""
    rows = {r.name: r for r in fig.evaluate(_figures(_report(api_errors=(0, 3, 0))))}
    assert math.isnan(rows["overhead_p50"].value) and not rows["overhead_p50"].met
    assert not rows["load_errors"].met
    assert fig.comparable_added_latency(63.0, 60.0, errors=0) == pytest.approx(0.05)
    assert math.isnan(fig.comparable_added_latency(40.0, 60.0, errors=1))


def test_the_unmeasured_warm_up_still_counts_its_errors() -> None:
    rows = {r.name: r for r in fig.evaluate(_figures(_report(warm_up_errors=2)))}
    assert rows["load_errors"].value == 2 and not rows["load_errors"].met
    assert rows["overhead_throughput"].met  # its rates are not among the pairs


def test_the_median_of_pairs_is_open_when_any_pair_is() -> None:
    assert fig.median_of([0.3, 0.1, 0.2]) == pytest.approx(0.2)
    assert fig.median_of([0.1, 0.2]) == pytest.approx(0.15)
    assert math.isnan(fig.median_of([0.1, fig.NAN, 0.05]))  # never the better figure of the rest
    assert math.isnan(fig.median_of([]))
    with pytest.raises(ValueError, match="its pair"):
        fig.paired([{"turns_per_s": 1.0}], [])


def test_values_print_as_percentages_counts_and_units() -> None:
    assert fig.format_value(0.123, "ratio") == "+12.3%"
    assert fig.format_value(-0.05, "ratio") == "-5.0%"
    assert fig.format_value(3.0, "") == "3"
    assert fig.format_value(41.25, "msg/s") == "41.2 msg/s"
    assert fig.format_value(fig.NAN, "ms") == "n/a"


POOL = [f"question {i}" for i in range(30)]


def test_load_scripts_greet_ask_different_questions_and_say_goodbye() -> None:
    scripts = fig.conversation_scripts(POOL, 4, 7, seed=1)
    assert len(scripts) == 4
    for script in scripts:
        assert len(script) == 7 and script[0] == fig.GREETING and script[-1] == fig.GOODBYE
        assert len(set(script[1:-1])) == 5 and set(script[1:-1]) <= set(POOL)
    assert scripts == fig.conversation_scripts(POOL, 4, 7, seed=1)
    assert scripts != fig.conversation_scripts(POOL, 4, 7, seed=2)
    with pytest.raises(ValueError):
        fig.conversation_scripts(POOL, 1, 1, seed=1)


def test_chained_long_scripts_ask_the_same_questions_early_and_late_never_twice_at_once() -> None:
    scripts = fig.chain_scripts(POOL, turns=12, edge=2, handovers=3, seed=5)
    assert [len(s) for s in scripts] == [12, 12, 12, 2], "the last conversation only opens its window"
    for script in scripts:
        assert len(set(script)) == len(script), "no question twice in one conversation"
    late = [s[-2:] for s in scripts[:-1]]
    early = [s[:2] for s in scripts[1:]]
    assert Counter(t for w in late for t in w) == Counter(t for w in early for t in w)
    for k in range(3):  # handover k: the late window of k beside the early window of k+1
        assert set(late[k]).isdisjoint(early[k])
    assert scripts == fig.chain_scripts(POOL, turns=12, edge=2, handovers=3, seed=5)
    with pytest.raises(ValueError):
        fig.chain_scripts(POOL, turns=3, edge=2, handovers=3, seed=5)
    with pytest.raises(ValueError):
        fig.chain_scripts(POOL, turns=12, edge=2, handovers=2, seed=5)


def test_turn_windows_are_numbered_from_one_and_inclusive() -> None:
    per_turn = [[1.0, 2.0, 3.0, 4.0], [10.0, 20.0]]
    assert fig.turn_window(per_turn, 1, 2) == [1.0, 2.0, 10.0, 20.0]
    assert fig.turn_window(per_turn, 3, 4) == [3.0, 4.0]
    with pytest.raises(ValueError):
        fig.turn_window(per_turn, 0, 2)


def test_the_text_pool_has_questions_then_followups_each_once() -> None:
    data = {"questions": [{"text": "a"}, {"text": "b"}, {"text": "a"}],
            "followups": [{"context": "a", "text": "c"}], "not_answerable": [{"text": "z"}]}
    assert fig.text_pool(data) == ["a", "b", "c"]


def test_the_request_timeout_is_the_widgets() -> None:
    assert fig.widget_timeout_s("const X = 1;\n  const TIMEOUT_MS = 12_500;\n") == 12.5
    with pytest.raises(ValueError):
        fig.widget_timeout_s("const RETRY_MS = 100;")
    assert fig.widget_timeout_s(WIDGET_JS.read_text(encoding="utf-8")) > 0


@pytest.mark.parametrize(("argv", "name"), [
    (["/r/.venv-bot/bin/python", "-m", "bot.rasa_server", "--model", "m.tar.gz"], "rasa"),
    (["/r/.venv-bot/bin/python", "-m", "bot.action_server", "--actions", "actions"], "action server"),
    (["/r/.venv-api/bin/python", "-m", "api.serve", "--port", "1"], "api"),
    (["/usr/bin/python3", "-m", "something.else"], "something.else"),
    (["/usr/bin/sleep", "5"], "sleep"),
])
def test_stack_processes_are_named_from_their_command_line(argv: list[str], name: str) -> None:
    assert fig.process_name(argv) == name


class _Recorder:
    """A channel that answers at once and notes who said what, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.opened = 0

    async def open(self) -> tuple[Outcome, str | None]:
        self.opened += 1
        return Outcome(0.0), f"c{self.opened - 1}"

    async def say(self, handle: str, text: str) -> Outcome:
        self.calls.append((handle, text))
        return Outcome(0.0)


def test_the_handover_chain_alternates_each_late_window_with_the_next_early_one() -> None:
    scripts = [["a1", "a2", "a3", "a4"], ["b1", "b2", "b3", "b4"], ["c1", "c2"]]
    channel = _Recorder()
    records = asyncio.run(handover_chain(channel, scripts, edge=2))
    assert [text for _, text in channel.calls] == [
        "a1", "a2", "a3", "b1", "a4", "b2", "b3", "c1", "b4", "c2"]
    assert [len(r.per_turn[0]) for r in records] == [4, 4, 2]
    assert all(handle == f"c{i}" for i, r in enumerate(records) for handle in r.handles)


def test_a_reply_of_the_apis_safety_net_is_told_apart_from_the_assistants() -> None:
    """Rasa did not answer in time: a 201 or a 200 all the same, but an error for the bench."""
    opening = {"messages": [{"text": "Hello, I am the clinic's assistant."},
                            {"text": OPENING_UNAVAILABLE.format(clinic="Example Clinic") + " If it is urgent..."}]}
    red_flag = {"messages": [{"text": "Call 112 now."}, {"text": OTHERWISE_UNAVAILABLE.format(clinic="X")}]}
    answer = {"messages": [{"text": "Mesotherapy is a series of small injections.", "buttons": []}]}
    assert safety_net_reply(opening) and safety_net_reply(red_flag)
    assert not safety_net_reply(answer) and not safety_net_reply({"messages": []})
