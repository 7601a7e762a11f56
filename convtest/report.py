"""The run's reports: JUnit XML for CI dashboards, one HTML page for people, a console summary.

The HTML page shows failures first, each conversation as a chat transcript with, per turn,
what the assistant understood (intent and confidence), where the answer came from (topic,
entry, sources) and each assertion beside what came back.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree as ET

from jinja2 import Environment, FileSystemLoader, select_autoescape

from convtest.runner import ERROR, FAILED, NOT_RUN, PASSED, CaseResult

TEMPLATES = Path(__file__).resolve().parent / "templates"
ORDER = {FAILED: 0, ERROR: 1, NOT_RUN: 2, PASSED: 3}


def ordered(results: list[CaseResult]) -> list[CaseResult]:
    """Failures first, then errors, not run, passed; by file and name within each."""
    return sorted(results, key=lambda r: (ORDER[r.status], str(r.case.file), r.case.name))


def counts(results: list[CaseResult]) -> Counter[str]:
    return Counter(r.status for r in results)


def junit(results: list[CaseResult], path: Path, root: Path) -> None:
    """One ``testsuite`` per file, one ``testcase`` per conversation."""
    suites = ET.Element("testsuites", name="conversation tests")
    by_file: dict[str, list[CaseResult]] = {}
    for result in results:
        by_file.setdefault(_relative(result.case.file, root), []).append(result)
    total = counts(results)
    suites.set("tests", str(len(results)))
    suites.set("failures", str(total[FAILED]))
    suites.set("errors", str(total[ERROR]))
    suites.set("skipped", str(total[NOT_RUN]))
    suites.set("time", f"{sum(r.seconds for r in results):.3f}")
    for file, members in by_file.items():
        tally = counts(members)
        suite = ET.SubElement(
            suites, "testsuite", name=file, tests=str(len(members)),
            failures=str(tally[FAILED]), errors=str(tally[ERROR]), skipped=str(tally[NOT_RUN]),
            time=f"{sum(r.seconds for r in members):.3f}")
        for result in members:
            case = ET.SubElement(suite, "testcase", name=result.case.name, classname=file,
                                 file=file, line=str(result.case.line or 0),
                                 time=f"{result.seconds:.3f}")
            if result.status == FAILED:
                failure = ET.SubElement(case, "failure", message=result.reason, type="AssertionError")
                failure.text = "\n".join(
                    f"step {turn.step or 'opening'} ({turn.kind}: {turn.sent}): {check.what}\n"
                    f"  expected: {check.expected}\n  got:      {check.actual}"
                    for turn, check in result.failures)
            elif result.status == ERROR:
                ET.SubElement(case, "error", message=result.reason, type="AssistantUnavailable")
            elif result.status == NOT_RUN:
                ET.SubElement(case, "skipped", message=result.reason)
    ET.indent(suites)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def html(results: list[CaseResult], path: Path, root: Path, *, target: str, seconds: float) -> None:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    page = env.get_template("report.html").render(
        results=ordered(results),
        counts=counts(results),
        total=len(results),
        steps=sum(r.case.step_count for r in results),
        checks=sum(r.checks for r in results),
        target=target,
        seconds=seconds,
        when=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        relative=lambda p: _relative(p, root),
        FAILED=FAILED, ERROR=ERROR, NOT_RUN=NOT_RUN, PASSED=PASSED,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


def console(results: list[CaseResult], root: Path, seconds: float) -> str:
    """The summary printed at the end: each problem, then one closing line."""
    lines: list[str] = []
    for result in ordered(results):
        if result.status == PASSED:
            continue
        where = f"{_relative(result.case.file, root)}:{result.case.line}"
        lines.append(f"{result.status.upper()}: {result.case.name} ({where})")
        if result.status == FAILED:
            for turn, check in result.failures:
                sent = f" ({turn.kind}: {turn.sent})" if turn.sent else ""
                lines.append(f"  step {turn.step or 'opening'}{sent}: {check.what}")
                lines.append(f"    expected: {check.expected}")
                lines.append(f"    got:      {check.actual}")
        else:
            lines.append(f"  {result.reason}")
    tally = counts(results)
    steps = sum(r.case.step_count for r in results if r.status != NOT_RUN)
    lines.append(
        f"{len(results)} conversations, {steps} steps run in {seconds:.1f} s: "
        f"{tally[PASSED]} passed, {tally[FAILED] + tally[ERROR]} failed"
        + (f", {tally[NOT_RUN]} skipped" if tally[NOT_RUN] else ""))
    return "\n".join(lines)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)
