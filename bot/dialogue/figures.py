"""Shares of people (knowledge/frequencies.yml) as a patient meets them.

One :class:`~bot.kb.frequencies.Frequency` gives all of it: the sentence in the chat ("88 out
of 100 men who had mesotherapy in one trial: red skin for a few hours after a visit. The
source's own figure: 88% (skincare guide). Group size: 25 people. Time: 8 weekly visits."),
the "How sure" line, and the ``figures`` payload from which the widget and the summary page
draw the icon array (100 marks, ``per_100`` filled) with its text alternative. The wording
is domain.yml's (``utter_frequency*``).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from bot.kb.frequencies import Frequency
from bot.kb.model import KnowledgeBase
from contract.urgent import response_text


def template(domain: Mapping[str, Any], name: str, **values: Any) -> str:
    """As ``bot.dialogue.replies.template`` (which imports this module)."""
    return response_text(domain.get("responses") or {}, name, **values)


def source_name(kb: KnowledgeBase, source_id: str) -> str:
    """The source as a sentence names it ("skincare guide"), else its title."""
    if kb.decision is not None and source_id in kb.decision.costs.source_names:
        return kb.decision.costs.source_names[source_id]
    source = kb.sources.get(source_id)
    return source.title if source else source_id


def line(domain: Mapping[str, Any], kb: KnowledgeBase, frequency: Frequency) -> str:
    """The share in words: N out of 100, the source's own form, who, how many, over what time."""
    name = "utter_frequency" if frequency.how_many else "utter_frequency_no_size"
    return template(domain, name, per_100=frequency.per_100, who=frequency.who, label=frequency.label,
                    source_form=frequency.source_form, source=source_name(kb, frequency.source),
                    how_many=frequency.how_many, over=frequency.over)


def alt(domain: Mapping[str, Any], frequency: Frequency) -> str:
    """The icon array's text alternative: "88 out of 100 men ...: red skin ..."."""
    return template(domain, "utter_frequency_alt", per_100=frequency.per_100, who=frequency.who,
                    label=frequency.label)


def sure(domain: Mapping[str, Any], note: str) -> str:
    return template(domain, "utter_frequency_sure", note=note)


def lines(domain: Mapping[str, Any], kb: KnowledgeBase, frequencies: Sequence[Frequency],
          known_note: str | None = None) -> str:
    """Each share on its own line, then each different "How sure" note once.

    ``known_note`` is a note the reply already shows (the entry's own): not repeated.
    """
    out = [line(domain, kb, f) for f in frequencies]
    notes = dict.fromkeys(f.certainty_note for f in frequencies if f.certainty_note != known_note)
    out += [sure(domain, note) for note in notes]
    return "\n".join(out)


def payload(domain: Mapping[str, Any], kb: KnowledgeBase, frequency: Frequency) -> dict[str, Any]:
    """One item of the ``figures`` block (contract.payloads): what the icon array needs.

    ``per_100`` marks of 100 are filled; ``alt`` is the array's text alternative, ``label``
    its short caption and ``text`` the whole share in words with how sure it is; ``value``
    and ``source`` are the source's own figure and its id.
    """
    return {
        "id": frequency.id,
        "per_100": frequency.per_100,
        "label": template(domain, "utter_frequency_label", per_100=frequency.per_100, label=frequency.label),
        "alt": alt(domain, frequency),
        "text": line(domain, kb, frequency) + " " + sure(domain, frequency.certainty_note),
        "value": frequency.source_form,
        "source": frequency.source,
    }


def payloads(domain: Mapping[str, Any], kb: KnowledgeBase,
             frequencies: Iterable[Frequency]) -> list[dict[str, Any]]:
    return [payload(domain, kb, f) for f in frequencies]


def options_shown(events: Iterable[Mapping[str, Any]]) -> bool:
    """Whether the options side by side were shown in this conversation (a bot message
    with ``decision.option`` in its custom payload)."""
    for event in events or ():
        if event.get("event") != "bot":
            continue
        custom = (event.get("data") or {}).get("custom")
        decision = custom.get("decision") if isinstance(custom, dict) else None
        if isinstance(decision, dict) and decision.get("option"):
            return True
    return False


def option_items(domain: Mapping[str, Any], kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Summary items: each option's benefits and harms that a source counts out of 100,
    with their ``figures`` (the icon arrays), in the options' order."""
    aid = kb.decision
    items: list[dict[str, Any]] = []
    for option in aid.options if aid else ():
        for dimension in ("benefits", "harms"):
            cell = option.cells.get(dimension)
            if cell is None or not cell.frequencies:
                continue
            items.append({
                "text": template(domain, "utter_options_cell", label=option.title,
                                 text=template(domain, f"utter_dimension_{dimension}")),
                "sources": list(dict.fromkeys(f.source for f in cell.frequencies)),
                "figures": payloads(domain, kb, cell.frequencies),
            })
    return items
