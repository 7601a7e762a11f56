"""The questions for the clinician (``details_form``) and what is kept of them.

Four optional questions, each skippable: where the hair loss is (``hair_pattern``), how long
it has gone on (``hair_duration``), the treatments tried or in use (``treatments_tried``, a
list, picked one at a time until ``treatments_done``) and the option the person leans to now
(``option_leaning``). The options they looked at come from the options view itself (the
``compare_options`` turns of this conversation), not from a question.

Consent is the checklist's (``checklist_consent``): one answer to "Can I keep your answers
with this chat?" covers the checklist and these questions. With it, every answer goes to
the API in the ``record`` block; without it, the record only deletes (``null``) and the
answers stay in Rasa's tracker slots, for this chat's list and summary only.

The answer choices and their labels are the buttons of the questions in domain.yml (glue);
the option titles come from knowledge/decision/options.yml. No patient-facing text here.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping, Sequence

from bot.dialogue import checklist as cl
from bot.dialogue.replies import template
from bot.kb.decision import OPTION_DIMENSIONS, DecisionAid
from contract.commands import CommandError, parse

FORM = "details_form"
PATTERN = "hair_pattern"
DURATION = "hair_duration"
TREATMENTS = "treatments_tried"
TREATMENTS_DONE = "treatments_done"
LEANING = "option_leaning"
VIEWED = "options_viewed"
"""The record key of the options looked at (not a slot: read from the conversation)."""

QUESTION_SLOTS: tuple[str, ...] = (PATTERN, DURATION, TREATMENTS_DONE, LEANING)
"""The form's questions, in the order asked (after the consent, when it is not yet given)."""
ANSWER_SLOTS: tuple[str, ...] = (PATTERN, DURATION, TREATMENTS, LEANING)
"""The slots holding answers."""
RESET_SLOTS: tuple[str, ...] = (PATTERN, DURATION, TREATMENTS, TREATMENTS_DONE, LEANING)
RECORD_KEYS: tuple[str, ...] = (PATTERN, DURATION, TREATMENTS, LEANING, VIEWED)

NOT_SURE = "not_sure"
SKIPPED = "prefer_not_to_say"
NONE = "none"
"""The treatment "none"."""

PATTERN_RESPONSE = "utter_ask_hair_pattern"
DURATION_RESPONSE = "utter_ask_hair_duration"
TREATMENT_RESPONSE = "utter_ask_treatments_first"
"""The first treatment question, whose buttons are every treatment choice."""

SlotGetter = Callable[[str], Any]


# --- choices --------------------------------------------------------------------------------

def payload_value(payload: str) -> str | None:
    """The answer a button stands for: ``/choose{"choice":"top"}`` -> top; ``/not_sure``
    -> not_sure; ``/prefer_not_to_say`` -> prefer_not_to_say; anything else None."""
    try:
        found = parse(payload)
    except CommandError:
        return None
    if found.intent == "choose":
        return found.entities.get("choice")
    if found.intent in (NOT_SURE, SKIPPED):
        return found.intent
    return None


def choices(domain: Mapping[str, Any], response: str) -> dict[str, str]:
    """answer -> button title, for the buttons of ``response`` (its first variant)."""
    variants = (domain.get("responses") or {}).get(response) or []
    if not variants:
        raise KeyError(f"domain.yml has no response '{response}'")
    out: dict[str, str] = {}
    for button in variants[0].get("buttons") or []:
        value = payload_value(str(button.get("payload", "")))
        if value and value not in out:
            out[value] = str(button["title"])
    return out


def leaning_choices(domain: Mapping[str, Any], decision: DecisionAid | None) -> dict[str, str]:
    """answer -> title for the leaning question: every option (doing nothing included),
    then "not sure yet" and "skip"."""
    out = {o.id: o.title for o in (decision.options if decision else ())}
    out[NOT_SURE] = template(domain, "utter_button_not_sure_yet")
    out[SKIPPED] = template(domain, "utter_button_skip")
    return out


def slot_choices(domain: Mapping[str, Any], decision: DecisionAid | None, slot: str) -> dict[str, str]:
    """The answers (and their labels) a question slot accepts."""
    if slot == PATTERN:
        return choices(domain, PATTERN_RESPONSE)
    if slot == DURATION:
        return choices(domain, DURATION_RESPONSE)
    if slot in (TREATMENTS, TREATMENTS_DONE):
        return choices(domain, TREATMENT_RESPONSE)
    if slot == LEANING:
        return leaning_choices(domain, decision)
    raise KeyError(slot)


# --- typed answers --------------------------------------------------------------------------

_QUESTION = re.compile(r"^(?:what|how|why|when|where|which|who|does|do|is|are|can|could|will|would|"
                       r"should|has|have)\b")
_SKIP = frozenset({"skip", "skip it", "skip this", "skip that", "pass", "next", "next question",
                   "rather not say", "i'd rather not say", "id rather not say", "prefer not to say"})
_NONE_WORDS = frozenset({"none", "nothing", "none of them", "no treatment", "nothing yet",
                         "no treatments", "i haven't tried anything", "i havent tried anything",
                         "not tried anything", "nothing so far", "none so far"})


def normal(text: str) -> str:
    text = text.lower().replace("’", "'")
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text).split())


def is_question(text: str) -> bool:
    plain = text.strip().lower()
    return plain.endswith("?") or bool(_QUESTION.match(plain))


def match_typed(text: str, labels: Mapping[str, str], none_value: str | None = None) -> list[str]:
    """The answers whose label a typed message names, in the order of ``labels``.

    A label matches when the message holds all its words, or the answer's id ("receding"), or
    is a whole-word part of the label of three letters or more ("prp", "top"). "skip" and the
    like give the skipped answer; "none" / "nothing" give ``none_value`` when there is one.
    """
    plain = normal(text)
    if not plain:
        return []
    if plain in _SKIP and SKIPPED in labels:
        return [SKIPPED]
    if none_value and plain in _NONE_WORDS:
        return [none_value]
    words = set(plain.split())
    found: list[str] = []
    for value, label in labels.items():
        if value == SKIPPED:
            continue
        core = normal(label.split("(")[0]) or normal(label)  # "PRP (platelet-rich plasma)" -> "prp"
        label_words = [w for w in core.split() if w not in {"a", "the", "of", "to", "on", "my"}]
        if label_words and all(w in words or (w.endswith("s") and w[:-1] in words) for w in label_words):
            found.append(value)
        elif f" {value.replace('_', ' ')} " in f" {plain} ":  # the answer's own id: "receding"
            found.append(value)
        elif len(plain) >= 3 and f" {plain} " in f" {normal(label)} ":
            found.append(value)
    return found


# --- answers and the record -----------------------------------------------------------------

def treatments(get_slot: SlotGetter) -> list[str]:
    value = get_slot(TREATMENTS)
    return [str(v) for v in value] if isinstance(value, list) else []


def answers(get_slot: SlotGetter) -> dict[str, Any]:
    """slot -> answer, for the questions answered (skipped ones included)."""
    found: dict[str, Any] = {}
    for slot in (PATTERN, DURATION, LEANING):
        value = get_slot(slot)
        if isinstance(value, str) and value:
            found[slot] = value
    tried = treatments(get_slot)
    if tried:
        found[TREATMENTS] = tried
    return found


def options_viewed(events: Iterable[Mapping[str, Any]], decision: DecisionAid | None) -> tuple[list[str], list[str]]:
    """(option ids opened one by one, dimensions compared across all options) in the options
    view of this conversation, first looked at first."""
    option_ids = [o.id for o in decision.options] if decision else []
    opened: list[str] = []
    compared: list[str] = []
    for event in events or ():
        if event.get("event") != "user":
            continue
        parse_data = event.get("parse_data") or {}
        if ((parse_data.get("intent") or {}).get("name")) != "compare_options":
            continue
        for entity in parse_data.get("entities") or ():
            value = entity.get("value") if entity.get("entity") == "choice" else None
            if value in option_ids and value not in opened:
                opened.append(value)
            elif value in OPTION_DIMENSIONS and value not in compared:
                compared.append(value)
    return opened, compared


def consent_record(decision: DecisionAid | None, get_slot: SlotGetter,
                   events: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The ``record`` block of every answer under the shared consent: with consent the
    checklist answers and these, ``null`` (delete) for what is not answered; without
    consent ``null`` for every key, so nothing is kept for staff."""
    kept = get_slot(cl.CONSENT_SLOT) is True
    record: dict[str, Any] = cl.record(decision, cl.answers(decision, get_slot) if kept else {})
    given = answers(get_slot) if kept else {}
    for key in (PATTERN, DURATION, TREATMENTS, LEANING):
        record[key] = given.get(key)
    opened, compared = options_viewed(events, decision) if kept else ([], [])
    record[VIEWED] = {"opened": opened, "compared": compared} if opened or compared else None
    return record


def label_list(labels: Sequence[str]) -> str:
    return ", ".join(labels)
