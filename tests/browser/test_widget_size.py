"""The widget's files stay small: a clinic's page should not pay for the chat before it opens."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

WIDGET = Path(__file__).resolve().parents[2] / "api" / "static" / "widget"
BUDGET = 50 * 1024


def test_widget_files_together_under_50_kb_gzipped() -> None:
    files = [WIDGET / "widget.js", WIDGET / "widget.css"]
    size = sum(len(gzip.compress(f.read_bytes(), compresslevel=9)) for f in files)
    assert 0 < size < BUDGET, f"{size} bytes gzipped"


def test_widget_never_builds_html_from_strings() -> None:
    source = (WIDGET / "widget.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setAttribute('style'", 'setAttribute("style"'):
        assert sink not in source, sink
    # No address of any other host: everything comes from the API's own origin.
    hosts = set(re.findall(r"https?://([^/'\"\s)]+)", source)) - {"www.w3.org"}
    assert hosts == set(), hosts
