"""The ids a conversation test may name, read from the project's knowledge and domain.

Only for catching typos before a run: the assistant itself is the judge of what it says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.kb.model import CLINIC_FIELDS
from bot.paths import REPO_ROOT, domain_file, knowledge_dir
from convtest.spec import Catalog

RASA_ACTIONS = frozenset({
    "action_listen", "action_restart", "action_session_start", "action_default_fallback",
    "action_deactivate_loop", "action_revert_fallback_events", "action_default_ask_affirmation",
    "action_default_ask_rephrase", "action_two_stage_fallback", "action_unlikely_intent",
    "action_back", "action_extract_slots",
})
"""Rasa's own actions, which a domain does not list."""


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None


def _names(items: Any) -> set[str]:
    """Names of a domain list whose items are names or one-key mappings."""
    names: set[str] = set()
    for item in items or []:
        if isinstance(item, str):
            names.add(item)
        elif isinstance(item, dict):
            names.update(str(k) for k in item)
    return names


def build(knowledge: Path | None = None, domain: Path | None = None) -> Catalog:
    """The catalog of this checkout (missing files leave their sets empty: not checked)."""
    kdir = knowledge or knowledge_dir()
    topics = {t["id"] for t in (_yaml(kdir / "topics.yml") or {}).get("topics", []) if "id" in t}
    sources = {s["id"] for s in (_yaml(kdir / "sources.yml") or {}).get("sources", []) if "id" in s}
    entries: set[str] = set()
    for path in sorted((kdir / "entries").glob("*.yml")):
        data = _yaml(path) or {}
        entries.update(e["id"] for e in data.get("entries", []) if isinstance(e, dict) and "id" in e)
    dom = _yaml(domain or domain_file()) or {}
    forms = set((dom.get("forms") or {}).keys())
    responses = set((dom.get("responses") or {}).keys())
    # A response is an action too (Rasa runs utter_* itself: utter_red_flag, the opening).
    actions = _names(dom.get("actions")) | forms | RASA_ACTIONS | responses
    return Catalog(
        topics=frozenset(topics),
        entries=frozenset(entries),
        sources=frozenset(sources),
        intents=frozenset(_names(dom.get("intents")) | {"nlu_fallback"}),
        responses=frozenset(responses),
        actions=frozenset(actions),
        slots=frozenset((dom.get("slots") or {}).keys()) | {"requested_slot"},
        clinic_fields=frozenset(CLINIC_FIELDS),
    )


DEFAULT_SUITE = REPO_ROOT / "tests" / "conversations"
