"""``python -m convtest``: run conversation tests, or record drafts of them.

    python -m convtest                          every file under tests/conversations/
    python -m convtest tests/conversations/cost.yml --tag guided --name 'cost*'
    python -m convtest --url https://staging.example --workers 8
    python -m convtest tests/conversations/new.yml --record

Without ``--url`` the run starts private stacks (one per clinic fixture) and stops them at
the end; with it, it talks to that deployment only (the test key, if any, comes from the
environment variable ``MESO_TEST_KEY``, never from the command line). Exit status: 0 when
nothing failed, 1 when a conversation failed or errored, 2 for a mistake in a test file or
in the command.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import os
import sys
import time
from pathlib import Path

import yaml

from bot.paths import REPO_ROOT
from convtest import catalog, draft, report, spec
from convtest.runner import NOT_RUN, PASSED, CaseResult, Target, run_all

RESULTS = REPO_ROOT / "results" / "conversations"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m convtest", description="Run conversation tests through the chat API.")
    parser.add_argument("paths", nargs="*", type=Path,
                        help="test files or folders (default: tests/conversations/)")
    parser.add_argument("-k", "--name", action="append", default=[],
                        help="only test cases whose name contains this (or matches this glob); repeatable")
    parser.add_argument("-t", "--tag", action="append", default=[],
                        help="only test cases with this tag (or any of these, comma-separated); repeatable")
    parser.add_argument("--url", default="",
                        help="base URL of a running deployment (default: start private stacks)")
    parser.add_argument("-j", "--workers", type=int, default=4,
                        help="conversations held at once (default 4)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    parser.add_argument("--junit", type=Path, default=RESULTS / "junit.xml", help="JUnit XML report")
    parser.add_argument("--html", type=Path, default=RESULTS / "report.html", help="HTML report")
    parser.add_argument("--record", action="store_true",
                        help="send the user turns and write the replies as draft assertions")
    parser.add_argument("--drafts", type=Path, default=None,
                        help="folder for --record's drafts (default: beside each test file, "
                             "as NAME.draft.yml, which git ignores and runs do not collect)")
    parser.add_argument("--list", action="store_true", help="list the selected test cases and stop")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.url and not args.url.startswith(("http://", "https://")):
        parser.error("--url must start with http:// or https://")
    return args


def select(cases: list[spec.TestCase], names: list[str], tags: list[str]) -> list[spec.TestCase]:
    """The cases matching any of ``names`` (substring or glob) and any of ``tags``."""
    def named(case: spec.TestCase) -> bool:
        return not names or any(
            fnmatch.fnmatchcase(case.name, n) if any(ch in n for ch in "*?[") else n in case.name
            for n in names)

    wanted = {tag.strip() for given in tags for tag in given.split(",") if tag.strip()}

    def tagged(case: spec.TestCase) -> bool:
        return not wanted or bool(wanted & set(case.tags))

    return [case for case in cases if named(case) and tagged(case)]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    paths = args.paths or [catalog.DEFAULT_SUITE]
    try:
        cases = spec.load(paths, catalog.build())
    except spec.FormatError as exc:
        print(f"Conversation tests not run: {len(exc.problems)} problem(s) in the test files:",
              file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    chosen = select(cases, args.name, args.tag)
    if not chosen:
        print("No test case matches the selection.", file=sys.stderr)
        return 2
    if args.list:
        for case in chosen:
            print(f"{case.name}  [{', '.join(case.tags)}]  {case.file}:{case.line}")
        return 0
    started = time.perf_counter()
    try:
        if args.url:
            target = Target(name=args.url, url=args.url.rstrip("/"),
                            test_key=os.environ.get("MESO_TEST_KEY", ""))
            results = _run([(c, target) for c in chosen], args)
            where = args.url
        else:
            from convtest.stacks import clinic_key, private_targets

            print(f"Starting private stacks for {len(chosen)} conversations…", flush=True)
            with private_targets(chosen) as targets:
                print(f"Ready after {time.perf_counter() - started:.0f} s: "
                      f"{len(targets)} stack(s).", flush=True)
                results = _run([(c, targets[clinic_key(c)]) for c in chosen], args)
            where = "private stacks"
    except spec.FormatError as exc:
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    if args.record:
        return _write_drafts(results, args.drafts)
    report.junit(results, args.junit, REPO_ROOT)
    report.html(results, args.html, REPO_ROOT, target=where, seconds=seconds)
    print(report.console(results, REPO_ROOT, seconds))
    print(f"Reports: {_shown(args.html)} and {_shown(args.junit)}")
    failed = sum(r.status not in (PASSED, NOT_RUN) for r in results)
    passed = sum(r.status == PASSED for r in results)
    print(f"conversations: {passed} passed, {failed} failed")
    return 1 if failed else 0


def _run(pairs: list[tuple[spec.TestCase, Target]], args: argparse.Namespace) -> list[CaseResult]:
    def progress(result: CaseResult) -> None:
        mark = {"passed": ".", "failed": "F", "error": "E", "not run": "s"}[result.status]
        print(mark, end="", flush=True)

    results = asyncio.run(run_all(pairs, workers=args.workers, timeout=args.timeout,
                                  record_only=args.record, progress=progress))
    print(flush=True)
    return results


def _write_drafts(results: list[CaseResult], folder: Path | None) -> int:
    """One draft file per test file: its fixtures and metadata, each case's turns as they went."""
    by_file: dict[Path, list[CaseResult]] = {}
    for result in results:
        by_file.setdefault(result.case.file, []).append(result)
    failed = 0
    for file, members in by_file.items():
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        fixtures = {k: v for item in raw.get("fixtures") or [] for k, v in item.items()}
        metadata = {k: v for item in raw.get("metadata") or [] for k, v in item.items()}
        cases = []
        for result in members:
            if result.status != PASSED:
                failed += result.status != NOT_RUN
                print(f"{result.case.name}: {result.status}: {result.reason}", file=sys.stderr)
            if not result.draft_turns():
                continue
            case = draft.test_case(
                result.case.name, result.draft_turns(), description=result.case.description,
                tags=result.case.tags, fixtures=result.case.fixtures)
            cases.append(case)
        if not cases:
            continue
        out = (folder or file.parent) / f"{file.stem}.draft.yml"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(draft.dump(
            draft.document(cases, fixtures, metadata),
            header=f"Recorded from {_shown(file)}: review every assertion, keep what matters,\n"
                   "then copy the test cases back into the test file."), encoding="utf-8")
        print(f"Draft: {_shown(out)} ({len(cases)} test cases)")
    return 1 if failed else 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
