"""Helpers for the candidacy checklist, the consultation summary and callback requests.

Side-effect free: they read slots and the knowledge base and fill templates from domain.yml.
The wording of every sentence is in domain.yml (glue) or knowledge/decision/
(facts); nothing here is patient-facing text.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping

from bot.dialogue.forms import PAUSED_SLOT
from bot.dialogue.replies import template
from bot.kb.decision import ChecklistItem, DecisionAid
from bot.kb.model import KnowledgeBase
from contract.callback import is_email, is_name, is_phone, is_time

FORM = "checklist_form"
CONSENT_SLOT = "checklist_consent"
CHANGE_SLOT = "checklist_change"
ANSWERS: tuple[str, ...] = ("yes", "no", "not_sure", "prefer_not_to_say")
# Answers that make an item a point to raise with the clinician.
POINT_ANSWERS: tuple[str, ...] = ("yes", "not_sure")

SlotGetter = Callable[[str], Any]


def slot_name(item_id: str) -> str:
    """The slot holding the answer to checklist item ``item_id``."""
    return f"check_{item_id}"


def item_slots(decision: DecisionAid | None) -> list[str]:
    """The answer slots of every checklist item, in the knowledge base's order."""
    return [slot_name(item.id) for item in decision.checklist] if decision else []


def answers(decision: DecisionAid | None, get_slot: SlotGetter) -> dict[str, str]:
    """item id -> answer, for the items answered (in checklist order)."""
    found: dict[str, str] = {}
    for item in decision.checklist if decision else ():
        value = get_slot(slot_name(item.id))
        if value in ANSWERS:
            found[item.id] = value
    return found


def items_with(decision: DecisionAid | None, answered: Mapping[str, str],
               wanted: Iterable[str]) -> list[ChecklistItem]:
    """The checklist items whose answer is one of ``wanted``, in checklist order."""
    keep = set(wanted)
    return [item for item in (decision.checklist if decision else ()) if answered.get(item.id) in keep]


def answer_label(domain: Mapping[str, Any], answer: str) -> str:
    """The answer as the buttons say it ("Yes", "Not sure", ...)."""
    return template(domain, f"utter_answer_{answer}")


def record(decision: DecisionAid | None, answered: Mapping[str, str]) -> dict[str, str | None]:
    """The ``record`` block: every item's answer, null (delete) for the unanswered ones."""
    return {slot_name(item.id): answered.get(item.id) for item in (decision.checklist if decision else ())}


def source_payload(kb: KnowledgeBase, source_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The ``sources`` block for these source ids (first mention first, each once)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for sid in source_ids:
        source = kb.sources.get(sid)
        if source is None or sid in seen:
            continue
        seen.add(sid)
        out.append({
            "id": source.id, "title": source.title, "url": source.url,
            "publisher": source.publisher, "sells_treatment": source.sells_treatment,
        })
    return out


# --- contact details for a callback -------------------------------------------------------
# The field rules are the contract's (contract/callback.py), which the API checks the
# callback block against, so what the bot accepts the API stores.
NO_PREFERENCE = "none"
"""The ``callback_time`` value when the person has no preferred time."""


def clean_name(value: Any) -> str | None:
    """The name, trimmed, when it is 1-100 printable characters with a letter; else None."""
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())
    if not is_name(name):
        return None
    if not any(ch.isalpha() for ch in name):
        return None
    return name


_EMAIL_TOKEN = re.compile(r"[^@\s\"<>()\[\],;:]+@[^@\s\"<>()\[\],;:]+")
_PHONE_RUN = re.compile(r"\+?\(?[0-9][0-9 ()\-]*[0-9]")


def split_contact(value: Any) -> tuple[str | None, str | None] | None:
    """(phone, email) in ``value``; None when there is neither, or anything doubtful.

    The text may be just the number or address, or a sentence with one of each ("my
    number is 07700 900123"). Two addresses, two numbers, or a bad one refuse the lot.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if is_email(text):
        return None, text
    if is_phone(text):
        return text, None
    tokens = _EMAIL_TOKEN.findall(text)
    if len(tokens) > 1:
        return None
    email = tokens[0].rstrip(".") if tokens else None
    if email is not None:
        if not is_email(email):
            return None
        text = text.replace(tokens[0], " ")
    runs = [run.strip() for run in _PHONE_RUN.findall(text)]
    runs = [run for run in runs if sum(ch.isdigit() for ch in run) >= 3]
    if len(runs) > 1 or (runs and not is_phone(runs[0])):
        return None
    phone = runs[0] if runs else None
    if phone is None and email is None:
        return None
    return phone, email


def contact_value(value: Any) -> str | None:
    """The phone number or email address in ``value``, as it will be stored; else None."""
    found = split_contact(value)
    if found is None:
        return None
    return " ".join(part for part in found if part)


def clean_time(value: Any) -> str | None:
    """The preferred time, trimmed, or :data:`NO_PREFERENCE`; None when it is not acceptable."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    if not text or text.lower() == NO_PREFERENCE:
        return NO_PREFERENCE
    if not is_time(text):
        return None
    return text
