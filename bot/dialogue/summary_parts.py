"""The consultation summary's first sections: what a clinician needs to read first.

In this order (each left out when there is nothing to say):

1. "Raise these first": red flags described in this chat (most severe first; a crisis is
   never put on a summary), then the checklist items answered yes, then not sure;
2. about the hair loss: where, how long, the treatments tried or in use;
3. the options: those looked at in the options view, and the one the person leans to;
4. the other checklist answers (no, prefer not to say).

What is kept: the summary document the API stores (``summary`` block, shown on the
printable page and to staff) holds the answers only with the checklist's consent
(``checklist_consent``), the same consent as the ``record`` block; red flags also when the
transcript is kept (the API keeps them with it anyway). The chat's plain-text summary
(``for_chat``) shows every answer given in this chat, marked as not kept, so a person who
asked us not to keep their answers still gets their own list, and nothing of it is stored
for staff unless they agreed to keep the whole chat.

Wording: templates in domain.yml; labels: the questions' buttons (bot/dialogue/details.py).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from bot.dialogue import checklist as cl
from bot.dialogue import details as dt
from bot.dialogue.replies import template
from bot.kb.decision import DecisionAid
from contract.levels import MOST_SEVERE_FIRST, is_level

SUMMARY_RED_FLAG_LEVELS: tuple[str, ...] = tuple(level for level in MOST_SEVERE_FIRST if level != "crisis")
"""The red-flag levels a summary may name, most severe first. A crisis is never written on
a page the person may print or share: they had crisis support in the chat itself."""

SlotGetter = Callable[[str], Any]


def item(text: str, sources: Iterable[str] = ()) -> dict[str, Any]:
    return {"text": text, "sources": list(dict.fromkeys(sources))[:20]}


def section(heading: str, intro: str | None, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"heading": heading, "intro": intro, "items": items[:100]}


def red_flag_levels(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """The red-flag levels the assistant answered in this chat (its replies' ``red_flag``
    blocks), most severe first, crisis left out."""
    seen: set[str] = set()
    for event in events or ():
        if event.get("event") != "bot":
            continue
        custom = (event.get("data") or {}).get("custom") or {}
        block = custom.get("red_flag") if isinstance(custom, Mapping) else None
        level = block.get("level") if isinstance(block, Mapping) else None
        if is_level(level):
            seen.add(str(level))
    return [level for level in SUMMARY_RED_FLAG_LEVELS if level in seen]


def _not_kept(domain: Mapping[str, Any], intro: str | None) -> str:
    note = template(domain, "utter_summary_not_kept_note")
    return f"{intro} {note}" if intro else note


def clinician_sections(domain: Mapping[str, Any], decision: DecisionAid | None, get_slot: SlotGetter,
                       events: Iterable[Mapping[str, Any]], *, for_chat: bool = False
                       ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The first sections (see the module) and the checklist answers they show.

    ``for_chat`` False: the stored document (answers only with consent). True: the chat's
    copy (every answer of this chat, the ones not kept marked so).
    """
    events = list(events or ())
    kept = get_slot(cl.CONSENT_SLOT) is True
    show_answers = kept or for_chat
    private = for_chat and not kept
    flags_kept = kept or get_slot("transcript_consent") == "yes"
    answered = cl.answers(decision, get_slot) if show_answers else {}
    sections: list[dict[str, Any]] = []

    # 1. Raise these first.
    first: list[dict[str, Any]] = []
    if flags_kept or for_chat:
        first += [item(template(domain, f"utter_summary_red_flag_{level}")) for level in red_flag_levels(events)]
    flagged = [i for answer in cl.POINT_ANSWERS for i in cl.items_with(decision, answered, [answer])]
    first += [item(template(domain, "utter_summary_checklist_item", title=i.title,
                            answer=cl.answer_label(domain, answered[i.id])), i.sources) for i in flagged]
    if first:
        intro = template(domain, "utter_summary_first_intro")
        sections.append(section(template(domain, "utter_summary_first_heading"),
                                _not_kept(domain, intro) if private and flagged else intro, first))

    # 2. About the hair loss; 3. the options.
    given = dt.answers(get_slot) if show_answers else {}
    hair: list[dict[str, Any]] = []
    for slot, name in ((dt.PATTERN, "utter_summary_pattern_item"), (dt.DURATION, "utter_summary_duration_item")):
        value = given.get(slot)
        labels = dt.slot_choices(domain, decision, slot)
        if value and value != dt.SKIPPED and value in labels:
            hair.append(item(template(domain, name, answer=labels[value])))
    tried = [v for v in given.get(dt.TREATMENTS, []) if v != dt.SKIPPED]
    labels = dt.slot_choices(domain, decision, dt.TREATMENTS)
    tried_labels = [labels[v] for v in tried if v in labels]
    if tried_labels:
        hair.append(item(template(domain, "utter_summary_treatments_item", answer=dt.label_list(tried_labels))))
    if hair:
        sections.append(section(template(domain, "utter_summary_hair_heading"),
                                _not_kept(domain, None) if private else None, hair))

    options: list[dict[str, Any]] = []
    if show_answers and decision is not None:
        opened, compared = dt.options_viewed(events, decision)
        if opened:
            options.append(item(template(domain, "utter_summary_viewed_item", options=dt.label_list(
                [decision.option(o).title for o in opened]))))
        if compared:
            options.append(item(template(domain, "utter_summary_compared_item", points=dt.label_list(
                [template(domain, f"utter_dimension_{d}") for d in compared]))))
        leaning = given.get(dt.LEANING)
        leaning_labels = dt.leaning_choices(domain, decision)
        if leaning and leaning != dt.SKIPPED and leaning in leaning_labels:
            options.append(item(template(domain, "utter_summary_leaning_item", answer=leaning_labels[leaning])))
    if options:
        intro = template(domain, "utter_summary_options_intro")
        sections.append(section(template(domain, "utter_summary_options_heading"),
                                _not_kept(domain, intro) if private else intro, options))

    # 4. The other checklist answers.
    rest = cl.items_with(decision, answered, ("no", "prefer_not_to_say"))
    if rest:
        heading = "utter_summary_checklist_other_heading" if flagged else "utter_summary_checklist_heading"
        intro = template(domain, "utter_summary_not_kept_note") if private \
            else template(domain, "utter_summary_checklist_intro")
        sections.append(section(template(domain, heading), intro, [
            item(template(domain, "utter_summary_checklist_item", title=i.title,
                          answer=cl.answer_label(domain, answered[i.id])), i.sources) for i in rest]))
    return sections, answered
