"""The knowledge base's sources, read from ``sources.yml``, to name what a summary cites.

The API never needs the knowledge entries, only who published each source: a summary item
cites source ids, and the summary page lists them by title.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceInfo:
    """What the summary page shows about one source."""

    title: str
    publisher: str | None = None
    url: str | None = None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def load_sources(knowledge_dir: Path) -> dict[str, SourceInfo]:
    """The sources of ``knowledge_dir/sources.yml`` by id; empty (with a warning) if unreadable.

    Summary pages then name each source by what the bot sent (its id or title).
    """
    path = knowledge_dir / "sources.yml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        logger.warning("sources not loaded from %s (%s)", path, type(exc).__name__)
        return {}
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        logger.warning("sources not loaded from %s (no 'sources' list)", path)
        return {}
    sources: dict[str, SourceInfo] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        source_id, title = _text(entry.get("id")), _text(entry.get("title"))
        if source_id and title:
            sources[source_id] = SourceInfo(
                title=title, publisher=_text(entry.get("publisher")), url=_text(entry.get("url"))
            )
    return sources
