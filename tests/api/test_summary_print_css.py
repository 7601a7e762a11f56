"""The print stylesheet of the consultation summary (api/static/summary-print.css): one page
for a typical summary on A4 and on US Letter (tests/browser/test_summary_print.py prints it)."""

from __future__ import annotations

import re

from api.settings import PACKAGE_DIR

CSS = (PACKAGE_DIR / "static" / "summary-print.css").read_text(encoding="utf-8")
TEMPLATE = (PACKAGE_DIR / "templates" / "summary.html").read_text(encoding="utf-8")
MM_PER_UNIT = {"mm": 1.0, "cm": 10.0, "in": 25.4, "pt": 25.4 / 72}


def rule(selector: str) -> dict[str, str]:
    """The declarations of the last rule whose selector is exactly ``selector``."""
    found = re.findall(r"(?:^|\})\s*" + re.escape(selector) + r"\s*\{([^}]*)\}", CSS, flags=re.M)
    assert found, f"no rule for {selector}"
    return {k.strip(): v.strip() for k, v in (d.split(":", 1) for d in found[-1].split(";") if ":" in d)}


def mm(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(mm|cm|in|pt)", value).groups()  # type: ignore[union-attr]
    return float(number) * MM_PER_UNIT[unit]


def test_the_page_is_the_printers_paper_with_margins_both_a4_and_letter_fit() -> None:
    page = rule("@page")
    # No fixed format: A4 stays A4 and Letter stays Letter (a fixed size would rescale one).
    assert page["size"] == "portrait"
    margins = [mm(v) for v in page["margin"].split()]
    assert all(8 <= m <= 15 for m in margins), margins
    vertical = margins[0] * 2 if len(margins) < 3 else margins[0] + margins[2]
    # The printable height left on US Letter (279 mm), the shorter of the two.
    assert 279 - vertical >= 250


def test_the_type_and_spacing_are_compact() -> None:
    body = rule("body")
    assert mm(body["font-size"]) <= mm("9pt") and float(body["line-height"]) <= 1.3
    assert mm(rule("h1")["font-size"]) <= mm("14pt")
    h2 = rule("h2")
    assert mm(h2["font-size"]) <= mm("10pt")
    assert all(mm(v) <= 3 for v in h2["margin"].split() if v != "0")
    assert rule(".items > li")["margin"].split()[0] == "0"
    assert "columns" in rule(".items:has(> li:nth-child(3))")
    assert rule(".print-hint")["display"] == "none"
    # Each point names its sources by number only in print; the list at the end names them.
    assert rule(".ref-title")["display"] == "none"
    assert '<span class="ref-title"> {{ source.title }}</span>' in TEMPLATE
    assert rule(".sources ol")["columns"] == "2"
