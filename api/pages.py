"""Server-rendered HTML pages (Jinja2, autoescape on for every template).

Everything on these pages came from the bot or the patient, so nothing is ever marked safe:
the templates escape every value, and carry no inline script or style (the strict CSP holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from api.schemas import Summary
from api.settings import PACKAGE_DIR
from api.sources import SourceInfo

TEMPLATES_DIR = PACKAGE_DIR / "templates"


@cache
def environment() -> Environment:
    """The Jinja2 environment, created on first use."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def format_time(value: datetime) -> str:
    """``12 March 2026, 14:05 UTC`` (the stored times are UTC)."""
    return f"{value.day} {value:%B %Y, %H:%M} UTC"


def web_url(url: str | None) -> str | None:
    """``url`` if it is an http(s) address (anything else is not made a link)."""
    if url and urlsplit(url).scheme in {"http", "https"} and urlsplit(url).netloc:
        return url
    return None


@dataclass
class SourceView:
    number: int
    title: str
    publisher: str | None
    url: str | None


@dataclass
class FigureView:
    """A share of people as an icon array: 100 marks, the first ``per_100`` filled."""

    per_100: int
    alt: str
    text: str

    @property
    def marks(self) -> list[bool]:
        """One flag per mark, in reading order: True for a filled one."""
        return [i < self.per_100 for i in range(100)]


@dataclass
class ItemView:
    text: str
    sources: list[SourceView] = field(default_factory=list)
    figures: list[FigureView] = field(default_factory=list)


@dataclass
class SectionView:
    heading: str
    intro: str | None
    items: list[ItemView]


def summary_context(
    summary: Summary,
    known: dict[str, SourceInfo],
    cited: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The summary page's values: sections whose items name their sources, and the list of
    sources, numbered in order of first citation.

    A source is named from the knowledge base (``known``), else from what the assistant's
    answers in this conversation cited (``cited``), else by the string the bot sent.
    """
    numbered: dict[str, SourceView] = {}

    def source(ref: str) -> SourceView:
        if ref not in numbered:
            info = known.get(ref)
            if info is not None:
                title, publisher, url = info.title, info.publisher, info.url
            else:
                seen = cited.get(ref, {})
                title = seen.get("title") if isinstance(seen.get("title"), str) else ref
                url = seen.get("url") if isinstance(seen.get("url"), str) else None
                publisher = None
            numbered[ref] = SourceView(len(numbered) + 1, title, publisher, web_url(url))
        return numbered[ref]

    sections = [
        SectionView(
            heading=section.heading,
            intro=section.intro,
            items=[
                ItemView(
                    item.text,
                    [source(ref) for ref in dict.fromkeys(item.sources)],
                    [FigureView(f.per_100, f.alt, f.text or f.alt) for f in item.figures],
                )
                for item in section.items
            ],
        )
        for section in summary.sections
    ]
    return {
        "title": summary.title,
        "generated": format_time(summary.generated_at),
        "generated_iso": summary.generated_at.isoformat(),
        "sections": sections,
        "sources": list(numbered.values()),
        "footer": summary.footer,
    }
