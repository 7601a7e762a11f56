"""What the stack's processes use, read from /proc (Linux): memory, CPU time, names."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.figures import process_name

_PROC = Path("/proc")


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return children


def tree(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """``pid`` and all its descendants."""
    children = _children() if children is None else children
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def name(pid: int) -> str:
    """The stack process ``pid`` is (``api``, ``rasa``, ``action server``), from its command line."""
    try:
        argv = (_PROC / str(pid) / "cmdline").read_bytes().rstrip(b"\0").decode(errors="replace").split("\0")
    except OSError:
        return f"pid {pid}"
    return process_name(argv)


def rss_mb(pids: list[int]) -> dict[str, float]:
    """Resident memory in MB of each process in ``pids`` with its descendants, by name, and
    ``total`` (every process counted once)."""
    children = _children()
    per: dict[str, float] = {}
    seen: set[int] = set()
    for pid in pids:
        members = [p for p in tree(pid, children) if p not in seen]
        seen.update(members)
        label = name(pid)
        per[label] = round(per.get(label, 0.0) + sum(_rss_kb(p) for p in members) / 1024, 1)
    per["total"] = round(sum(v for k, v in per.items()), 1)
    return per


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time so far of ``pids`` and their descendants."""
    ticks = 0
    children = _children()
    for pid in {p for root in pids for p in tree(root, children)}:
        try:
            fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_idle(pids: list[int], busy_share: float = 0.05, window: float = 1.0, limit: float = 20.0) -> float:
    """Wait until the processes use under ``busy_share`` of one core over ``window`` seconds
    (their leftover work from the last phase is done), at most ``limit`` seconds.

    Returns the seconds waited; at ``limit`` the stack is still busy (printed as such)."""
    started = time.monotonic()
    before = cpu_seconds(pids)
    while time.monotonic() - started < limit:
        time.sleep(window)
        after = cpu_seconds(pids)
        if after - before < busy_share * window:
            return time.monotonic() - started
        before = after
    return time.monotonic() - started
