"""The urgent reply for a red-flag level: the same words whether the bot or the API sends it.

The words are the domain's responses (``domain.yml``: ``utter_red_flag_<level>`` with its
translations ``utter_red_flag_<level>_<code>``, the default emergency number and crisis
line, the "call the clinic" phrase); the numbers are the clinic's (``clinic.yml``), or the
defaults when the clinic has not set them. The bot renders it inside Rasa
(``bot/dialogue/nlg.py``); the API renders it when the bot cannot answer
(``api/safety_net.py``), from the same two files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from contract.levels import LEVELS

Responses = Mapping[str, Any]
"""The domain's ``responses``: name -> list of variants, each a mapping with ``text``."""


@dataclass(frozen=True)
class Contacts:
    """What an urgent reply may name: the clinic, its phone, its emergency number and crisis
    line (None: not set, the domain's default is said instead)."""

    clinic: str
    phone: str | None = None
    emergency_number: str | None = None
    crisis_line: str | None = None

    @classmethod
    def of(cls, clinic: Any) -> "Contacts":
        """From the clinic's facts (any object with ``name``, ``phone``, ``emergency_number``
        and ``crisis_line``, such as ``bot.kb.model.Clinic``)."""
        return cls(clinic=clinic.name, phone=clinic.phone,
                   emergency_number=clinic.emergency_number, crisis_line=clinic.crisis_line)


class _Keep(dict):
    """Leaves ``{unknown}`` placeholders as they are instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def response_text(responses: Responses, name: str, slots: Mapping[str, Any] | None = None,
                  **values: Any) -> str:
    """The text of response ``name``, filled with ``values``: the first variant whose slot
    conditions ``slots`` meet (as Rasa picks them), else the first variant without any."""
    variants = responses.get(name)
    if not variants:
        raise KeyError(f"the domain has no response '{name}'")
    slots = slots or {}
    met = [v for v in variants if v.get("condition") and all(
        slots.get(c.get("name")) == c.get("value") for c in v["condition"])]
    plain = [v for v in variants if not v.get("condition")]
    chosen = (met or plain or variants)[0]
    return str(chosen["text"]).format_map(_Keep(values))


def localised(responses: Responses, name: str, language: str | None) -> str:
    """``name`` in ``language`` when the domain has that variant (``<name>_<code>``), else ``name``."""
    if language and f"{name}_{language}" in responses:
        return f"{name}_{language}"
    return name


def emergency_number(responses: Responses, contacts: Contacts, language: str | None = None) -> str:
    return contacts.emergency_number or response_text(
        responses, localised(responses, "utter_emergency_number_default", language))


def crisis_line(responses: Responses, contacts: Contacts, language: str | None = None) -> str:
    return contacts.crisis_line or response_text(
        responses, localised(responses, "utter_crisis_line_default", language))


def clinic_call(responses: Responses, contacts: Contacts) -> str:
    if contacts.phone:
        return response_text(responses, "utter_red_flag_call_clinic",
                             clinic=contacts.clinic, phone=contacts.phone)
    return contacts.clinic


def urgent_text(responses: Responses, contacts: Contacts, level: str,
                language: str | None = None) -> str:
    """The reply for ``level`` (in ``language`` when the domain has it); its first sentence
    says what to do."""
    if level not in LEVELS:
        raise ValueError("unknown red-flag level")
    return response_text(
        responses, localised(responses, f"utter_red_flag_{level}", language),
        emergency=emergency_number(responses, contacts, language),
        crisis_line=crisis_line(responses, contacts, language),
        clinic_call=clinic_call(responses, contacts),
    )
