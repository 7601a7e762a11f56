"""The safety net: red-flag help when the bot cannot answer.

When Rasa or the action server is down, slower than the API's timeout, or failing, the API
runs the bot's own red-flag rules (``contract.safety``) on the patient's message. A red flag
gets the same urgent reply the bot would send (``contract.urgent``: the domain's words, the
clinic's numbers), marked with its level so that staff see it first, and a line saying that
the assistant cannot answer anything else now. Anything else gets the usual 503, whose text
ends with what to do if it is urgent. Opening a conversation works too: the opening texts are
the domain's, so a frightened patient can always start and ask for help.

Everything is read and compiled once, at start-up (:func:`load`); nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from api.rasa_client import RasaCustom, RasaMessage, RasaNlu, RasaReply
from bot.kb.model import Clinic
from contract import commands, payloads, urgent
from contract.levels import intent_of, most_severe
from contract.safety.red_flags import Detection, RedFlagRules, detect, load_rules

OTHERWISE_UNAVAILABLE = (
    "I can't answer anything else right now: the assistant is not available. "
    "Please try again in a few minutes, or contact {clinic}."
)
"""Said after the urgent reply the safety net sends."""
URGENT_POINTER = (
    "If it is urgent, call {emergency} now. If you are thinking of harming yourself, call "
    "{crisis_line}."
)
"""Ends every other 503 the chat sends, and the opening the safety net sends."""
OPENING_UNAVAILABLE = (
    "I can't answer questions right now: the assistant is not available. Please try again in "
    "a few minutes, or contact {clinic}."
)
OPENING = ("utter_welcome", "utter_disclaimer", "utter_privacy")
"""The bot's opening responses (``data/rules/conversation.yml``) the safety net sends too."""


@dataclass(frozen=True)
class SafetyNet:
    """The rules, the domain's texts and the clinic's contacts, loaded once."""

    rules: RedFlagRules
    responses: Mapping[str, Any]
    contacts: urgent.Contacts
    pointer: str
    """What to do if it is urgent, in one line (:data:`URGENT_POINTER`, filled once)."""

    def detect(self, text: str) -> Detection:
        """The red flags the rules find in ``text`` (the bot's English rules)."""
        return detect(text, self.rules)

    def unavailable(self, detail: str) -> str:
        """A 503's text followed by the urgent pointer."""
        return f"{detail} {self.pointer}"

    def reply(self, text: str, known: str | None = None) -> RasaReply | None:
        """The urgent reply to ``text`` as the bot would have sent it, or None when the rules
        find no red flag (a mention, a negation or nothing). ``known``: a level the bot had
        already found before it failed (its reply had nothing to show)."""
        found = self.detect(text)
        level = most_severe(found.level, known)
        if level is None:
            return None
        custom = payloads.red_flag(level, found.flags)
        return RasaReply(nlu=RasaNlu(intent=intent_of(level), confidence=1.0), messages=[
            RasaMessage(
                text=urgent.urgent_text(self.responses, self.contacts, level),
                custom=RasaCustom.model_validate(custom),
            ),
            RasaMessage(text=OTHERWISE_UNAVAILABLE.format(clinic=self.contacts.clinic)),
        ])

    def opening(self, consent: bool) -> RasaReply:
        """The opening messages without the bot: who it is, what it is not, the privacy
        notice as the patient chose, that it cannot answer now, and what to do if urgent."""
        clinic = self.contacts.clinic
        slots = {commands.CONSENT_ENTITY: "yes" if consent else "no"}
        texts = [urgent.response_text(self.responses, name, slots, clinic=clinic) for name in OPENING]
        texts.append(OPENING_UNAVAILABLE.format(clinic=clinic) + " " + self.pointer)
        return RasaReply(messages=[RasaMessage(text=t) for t in texts])


def load(domain_file: Path, clinic: Clinic) -> SafetyNet:
    """Read the domain's responses and compile the rules (the English word list included)."""
    domain = yaml.safe_load(domain_file.read_text(encoding="utf-8")) or {}
    rules = load_rules()
    detect("warm up the word lists", rules)
    responses = domain.get("responses") or {}
    contacts = urgent.Contacts.of(clinic)
    pointer = URGENT_POINTER.format(
        emergency=urgent.emergency_number(responses, contacts),
        crisis_line=urgent.crisis_line(responses, contacts),
    )
    return SafetyNet(rules=rules, responses=responses, contacts=contacts, pointer=pointer)
