"""What matters most to the person: values_form, its questions, and the reflection.

``values_form`` asks for ``values_done``; each answer adds one value id (of
knowledge/decision/values.yml) to ``important_values`` (most important first, at most
:data:`MAX_VALUES`) until the person has picked three or says that is all. A button
sends ``/choose{"choice":"<value id>"}``; typed words are matched against each value's
own words. ``action_reflect_values`` then shows, for each chosen value, what the sources
say about it for every option, in the fixed order of options.yml: no ranking, no advice.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.decision import (
    button, cell_line, cell_numbers, match_ordinal, match_values, response_buttons, source_list,
)
from bot.dialogue import figures as shares
from bot.dialogue.forms import end_pause
from bot.dialogue.replies import command, readable_date, template
from bot.kb.decision import DecisionAid
from bot.kb.runtime import Runtime, get_runtime

FORM = "values_form"
MAX_VALUES = 3
# Intents that are never an answer to "what matters most": the form is rejected so their
# own rules answer them (stop, start again, a red flag, a request to decline, ...).
_NOT_AN_ANSWER = frozenset({
    "stop_form", "change_answer", "continue_form", "explore_values", "decision_help",
    "compare_options", "check_readiness", "estimate_cost", "start_checklist", "get_summary",
    "request_callback", "ask_diagnosis", "ask_dose", "ask_stop_medicine", "ask_self_injection",
    "ask_disclosure", "contact_clinic", "goodbye", "greet", "start_conversation",
})
# Intents that never end the values step, even when the words say "that's all".
_NEVER_AN_ANSWER = frozenset({"stop_form", "change_answer"})
# Intents that answer the question but may name no value: ask again instead of rejecting.
_ANSWER_INTENTS = frozenset({"choose", "affirm", "not_sure", "prefer_not_to_say", "nlu_fallback"})
_DONE = re.compile(r"(?:(?:no|nope|ok|okay)\s+)?(?:that'?s all|that is all|that'?s it|that is it|"
                   r"nothing else|no more|nothing more|i'?m done|done|finished|none|nothing|"
                   r"that'?s everything|thats enough|that'?s enough)(?:\s+(?:thanks|thank you|for now))?")


def _normal_done(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.replace("’", "'")).split())
_QUESTION = re.compile(r"^(?:what|how|why|when|where|which|who|does|do|is|are|can|could|will|would|"
                       r"should|has|have)\b")


def _decision(runtime: Runtime) -> DecisionAid | None:
    return runtime.kb.decision


def chosen_values(tracker: Tracker) -> list[str]:
    value = tracker.get_slot("important_values")
    return [str(v) for v in value] if isinstance(value, list) else []


class ActionResetValues(Action):
    """Clears the values step, to start it (again) from the first question."""

    def name(self) -> str:
        return "action_reset_values"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        return [SlotSet("important_values", None), SlotSet("values_done", None)]


class ActionAskValuesDone(Action):
    """Asks what matters (most, or else), with a button per value not yet picked."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_ask_values_done"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        aid = _decision(self._runtime)
        if aid is None:
            return []
        picked = chosen_values(tracker)
        buttons = [{"title": v.title, "payload": command("choose", {"choice": v.id})}
                   for v in aid.values if v.id not in picked]
        if picked:
            titles = ", ".join(aid.value(v).title for v in picked if v in {x.id for x in aid.values})
            text = template(domain, "utter_ask_values_more", picked=titles)
            buttons.append(button(domain, "utter_button_values_done", "deny"))
        else:
            text = template(domain, "utter_ask_values_first")
        dispatcher.utter_message(text=text, buttons=buttons)
        return []


class ValidateValuesForm(FormValidationAction):
    """Turns each answer into value ids; ends the form at three or at "that's all"."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "validate_values_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        return [*await super().run(dispatcher, tracker, domain), *end_pause(tracker, FORM)]

    async def extract_values_done(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: dict[str, Any]) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "values_done":
            return {}
        aid = _decision(self._runtime)
        latest = tracker.latest_message or {}
        intent = str((latest.get("intent") or {}).get("name") or "")
        text = str(latest.get("text") or "")
        if aid is None or intent.startswith("red_flag_") or intent in _NEVER_AN_ANSWER:
            return {}
        ids = [v.id for v in aid.values]
        picked = [v for v in chosen_values(tracker) if v in ids]
        plain = text.lower().strip()
        if not text.startswith("/") and _DONE.fullmatch(_normal_done(plain)):
            # "that's all" (often read as goodbye or fallback): the list is complete.
            return {"important_values": picked, "values_done": True}
        if intent in _NOT_AN_ANSWER:
            return {}
        if text.startswith("/"):  # a button: only its entity counts
            new = [e for e in tracker.get_latest_entity_values("choice") if e in ids]
        elif plain.endswith("?") or _QUESTION.match(plain):
            return {}  # a question: answered by its own rule, then the form asks again
        else:
            new = match_values(text, aid.values)
            if not new:
                ordinal = match_ordinal(text, [v for v in ids if v not in picked])
                new = [ordinal] if ordinal else []
        for value_id in new:
            if value_id not in picked and len(picked) < MAX_VALUES:
                picked.append(value_id)
        if new:
            return {"important_values": picked, "values_done": True if len(picked) >= MAX_VALUES else None}
        if intent == "deny":
            return {"important_values": picked, "values_done": True}
        if intent in _ANSWER_INTENTS:
            dispatcher.utter_message(text=template(domain, "utter_values_not_understood"))
            # Setting the slots again (unchanged) keeps the form going: it asks again.
            return {"important_values": picked, "values_done": None}
        return {}

    async def validate_values_done(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                   tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        # important_values is filled with values_done but is not a required slot of the
        # form: hand it back here so it is not dropped.
        return {"values_done": True if slot_value else None, "important_values": chosen_values(tracker)}


class ActionReflectValues(Action):
    """Each chosen value against every option, in the options' fixed order."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_reflect_values"

    def _next_buttons(self, domain: dict[str, Any]) -> list[dict[str, str]]:
        wanted = ("/check_readiness", "/compare_options", "/get_summary", "/request_callback")
        menu = [b for b in response_buttons(domain, "utter_decision_menu") if b["payload"] in wanted]
        return [button(domain, "utter_button_values_again", "explore_values"), *menu]

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        kb = self._runtime.kb
        aid = kb.decision
        if aid is None:
            return []
        ids = {v.id for v in aid.values}
        picked = [v for v in chosen_values(tracker) if v in ids][:MAX_VALUES]
        buttons = self._next_buttons(domain)
        if not picked:
            dispatcher.utter_message(text=template(domain, "utter_values_none"), buttons=buttons)
            return [SlotSet("important_values", [])]
        dispatcher.utter_message(text=template(domain, "utter_values_reflect_intro",
                                               reviewed=readable_date(aid.reviewed)))
        for number, value_id in enumerate(picked, start=1):
            value = aid.value(value_id)
            lines = [template(domain, "utter_values_reflect_value", number=number, value=value.title)]
            sources: list[str] = []
            counted = []
            for option in aid.options:
                cell = option.cells.get(value.dimension)
                lines.append(cell_line(domain, option.title, cell))
                numbers = cell_numbers(domain, kb, value.dimension, cell)
                if numbers:
                    lines[-1] += "\n" + numbers
                sources.extend(cell.sources if cell else ())
                counted.extend(cell.frequencies if cell else ())
            dispatcher.utter_message(text="\n\n".join(lines), json_message={
                **({"figures": shares.payloads(domain, kb, counted)} if counted else {}),
                "sources": source_list(kb, sources),
                "decision": {"value": value.id, "dimension": value.dimension, "rank": number,
                             "options": [o.id for o in aid.options]},
                "reviewed": aid.reviewed, "review_due": aid.review_due,
            })
        dispatcher.utter_message(text=template(domain, "utter_values_reflect_end"), buttons=buttons)
        return [SlotSet("important_values", picked)]

