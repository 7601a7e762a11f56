"""Questions for the clinician (``details_form``): where the hair loss is, how long, the
treatments tried, the option the person leans to. Each can be skipped; nothing is a verdict.

The consent is the checklist's (``checklist_consent``): the form asks it first when it has
not been asked in this chat (``utter_ask_details_form_checklist_consent``), else says what
was chosen. Without consent the questions are still asked; the answers then serve only this
chat's list and summary (Rasa's tracker slots, erased with the conversation) and no
``record`` is sent for them. Helpers and the record: bot/dialogue/details.py.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.dialogue import checklist as cl
from bot.dialogue import details as dt
from bot.dialogue.decision import button, match_ordinal, response_buttons
from bot.dialogue.forms import PAUSED_SLOT, end_pause
from bot.dialogue.replies import command, template
from bot.kb.runtime import Runtime, get_runtime

# Intents that are never an answer, even when the words name a choice.
_NEVER_AN_ANSWER = frozenset({"stop_form", "change_answer", "continue_form"})
# Intents that answer the question but may name no choice: ask again instead of rejecting.
_ANSWER_INTENTS = frozenset({"choose", "affirm", "deny", "not_sure", "prefer_not_to_say", "nlu_fallback"})


def _latest(tracker: Tracker) -> tuple[str, str]:
    latest = tracker.latest_message or {}
    return str((latest.get("intent") or {}).get("name") or ""), str(latest.get("text") or "")


def _all_answered(tracker: Tracker) -> bool:
    return all(tracker.get_slot(slot) not in (None, "", []) for slot in dt.QUESTION_SLOTS)


def _none_answered(tracker: Tracker) -> bool:
    return all(tracker.get_slot(slot) in (None, "", []) for slot in dt.RESET_SLOTS)


class ActionDetailsStart(Action):
    """Before the form: a finished round starts again; says whether the answers are kept
    when the consent was already given (or refused) in this chat."""

    def name(self) -> str:
        return "action_details_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        events: list[EventType] = [*end_pause(tracker, dt.FORM)]
        fresh = _none_answered(tracker) or _all_answered(tracker)
        if _all_answered(tracker):
            events += [SlotSet(slot, None) for slot in dt.RESET_SLOTS]
        consent = tracker.get_slot(cl.CONSENT_SLOT)
        if fresh and consent is not None:
            name = "utter_details_intro_kept" if consent is True else "utter_details_intro_not_kept"
            dispatcher.utter_message(response=name)
        return events


class ActionDetailsReset(Action):
    """Clears the answers (not the consent), to ask the questions again from the first."""

    def name(self) -> str:
        return "action_details_reset"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        return [SlotSet(slot, None) for slot in dt.RESET_SLOTS]


class ValidateDetailsForm(FormValidationAction):
    """Reads each answer from a button or typed words; "skip" is an answer too."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "validate_details_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        return [cl.CONSENT_SLOT, *dt.QUESTION_SLOTS]

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        return [*await super().run(dispatcher, tracker, domain), *end_pause(tracker, dt.FORM)]

    def _read(self, slot: str, tracker: Tracker, domain: DomainDict, none_value: str | None = None
              ) -> tuple[list[str], bool]:
        """(answers named, whether the message was meant as an answer at all)."""
        intent, text = _latest(tracker)
        if intent.startswith("red_flag_") or intent in _NEVER_AN_ANSWER:
            return [], False
        labels = dt.slot_choices(domain, self._runtime.kb.decision, slot)
        if intent == dt.SKIPPED:
            return [dt.SKIPPED], True
        if intent == dt.NOT_SURE and dt.NOT_SURE in labels:
            return [dt.NOT_SURE], True
        if text.startswith("/"):  # a button: only its entity counts
            return [e for e in tracker.get_latest_entity_values("choice") if e in labels], True
        if dt.is_question(text):
            return [], False  # answered by its own rule, then the form asks again
        found = dt.match_typed(text, labels, none_value)
        if not found and slot != dt.TREATMENTS_DONE:  # "the second one": the buttons' order
            ordinal = match_ordinal(text, [v for v in labels if v != dt.SKIPPED])
            found = [ordinal] if ordinal else []
        return found, bool(found) or intent in _ANSWER_INTENTS

    def _single(self, slot: str, dispatcher: CollectingDispatcher, tracker: Tracker,
                domain: DomainDict, none_value: str | None = None) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != slot:
            return {}
        found, meant = self._read(slot, tracker, domain, none_value)
        if found:
            return {slot: found[0]}
        if meant:
            dispatcher.utter_message(text=template(domain, "utter_details_not_understood"))
            return {slot: None}  # a slot event keeps the form going: it asks again
        return {}

    async def extract_hair_pattern(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> dict[str, Any]:
        return self._single(dt.PATTERN, dispatcher, tracker, domain)

    async def extract_hair_duration(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> dict[str, Any]:
        return self._single(dt.DURATION, dispatcher, tracker, domain)

    async def extract_option_leaning(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> dict[str, Any]:
        return self._single(dt.LEANING, dispatcher, tracker, domain, none_value="nothing")

    async def extract_treatments_done(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != dt.TREATMENTS_DONE:
            return {}
        intent, _ = _latest(tracker)
        picked = [v for v in dt.treatments(tracker.get_slot) if v not in (dt.NONE, dt.SKIPPED, dt.NOT_SURE)]
        found, meant = self._read(dt.TREATMENTS_DONE, tracker, domain, none_value=dt.NONE)
        if intent == "deny" and not found:  # "That's all" (or a plain "no" before any pick)
            return {dt.TREATMENTS: picked or [dt.NONE], dt.TREATMENTS_DONE: True}
        if dt.SKIPPED in found:
            return {dt.TREATMENTS: picked or [dt.SKIPPED], dt.TREATMENTS_DONE: True}
        if dt.NONE in found and not picked:
            return {dt.TREATMENTS: [dt.NONE], dt.TREATMENTS_DONE: True}
        if dt.NOT_SURE in found and not picked:
            return {dt.TREATMENTS: [dt.NOT_SURE], dt.TREATMENTS_DONE: True}
        new = [v for v in found if v not in (dt.NONE, dt.SKIPPED, dt.NOT_SURE) and v not in picked]
        if new:
            picked += new
            choices = [v for v in dt.slot_choices(domain, self._runtime.kb.decision, dt.TREATMENTS)
                       if v not in (dt.NONE, dt.SKIPPED, dt.NOT_SURE)]
            done = True if all(c in picked for c in choices) else None
            return {dt.TREATMENTS: picked, dt.TREATMENTS_DONE: done}
        if found:  # "none" after some picks: the list is complete
            return {dt.TREATMENTS: picked, dt.TREATMENTS_DONE: True}
        if meant:
            dispatcher.utter_message(text=template(domain, "utter_details_not_understood"))
            return {dt.TREATMENTS: picked or None, dt.TREATMENTS_DONE: None}
        return {}

    async def validate_treatments_done(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                       tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        # treatments_tried is filled with treatments_done but is not a required slot of the
        # form: hand it back here so it is not dropped.
        tried = dt.treatments(tracker.get_slot)
        return {dt.TREATMENTS_DONE: True if slot_value else None, dt.TREATMENTS: tried or None}


class ActionAskTreatmentsDone(Action):
    """Asks for the treatments tried, one at a time, with a button for each not yet picked."""

    def name(self) -> str:
        return "action_ask_treatments_done"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        picked = [v for v in dt.treatments(tracker.get_slot) if v not in (dt.NONE, dt.SKIPPED, dt.NOT_SURE)]
        every = response_buttons(domain, dt.TREATMENT_RESPONSE)
        labels = dt.choices(domain, dt.TREATMENT_RESPONSE)
        if not picked:
            dispatcher.utter_message(text=template(domain, "utter_ask_treatments_first"), buttons=every)
            return []
        rest = [b for b in every if dt.payload_value(b["payload"]) not in (*picked, dt.NONE, dt.SKIPPED)]
        rest.append(button(domain, "utter_button_treatments_done", "deny"))
        dispatcher.utter_message(text=template(domain, "utter_ask_treatments_more",
                                               picked=dt.label_list([labels[v] for v in picked if v in labels])),
                                 buttons=rest)
        return []


class ActionAskOptionLeaning(Action):
    """Asks which option the person leans to now: every option (doing nothing included),
    in the options' fixed order, then "not sure yet" and "skip"."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_ask_option_leaning"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        decision = self._runtime.kb.decision
        labels = dt.leaning_choices(domain, decision)
        buttons = [{"title": title, "payload": command("choose", {"choice": value})}
                   for value, title in labels.items() if value not in (dt.NOT_SURE, dt.SKIPPED)]
        buttons += [{"title": labels[dt.NOT_SURE], "payload": command(dt.NOT_SURE)},
                    {"title": labels[dt.SKIPPED], "payload": command(dt.SKIPPED)}]
        text = template(domain, "utter_ask_option_leaning")
        opened, _ = dt.options_viewed(tracker.events, decision)
        if opened and decision is not None:
            text = template(domain, "utter_details_viewed", options=dt.label_list(
                [decision.option(o).title for o in opened])) + " " + text
        dispatcher.utter_message(text=text, buttons=buttons)
        return []


def _next_buttons(domain: DomainDict, tracker: Tracker, runtime: Runtime) -> list[dict[str, str]]:
    """The summary first; the checklist when none of it is answered; then the rest."""
    menu = {b["payload"]: b for b in response_buttons(domain, "utter_decision_menu")}
    buttons = [menu["/get_summary"]]
    if not cl.answers(runtime.kb.decision, tracker.get_slot):
        buttons.append(menu["/start_checklist"])
    buttons += [menu["/compare_options"], menu["/request_callback"],
                button(domain, "utter_button_decision_menu", "decision_help")]
    return buttons


class ActionDetailsResult(Action):
    """What will go in the summary, whether it is kept, and the next steps."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_details_result"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        decision = self._runtime.kb.decision
        kept = tracker.get_slot(cl.CONSENT_SLOT) is True
        lines = [template(domain, "utter_details_done")]
        if kept:
            lines.append(template(domain, "utter_details_kept"))
        elif tracker.get_slot("transcript_consent") == "yes":
            lines.append(template(domain, "utter_details_not_kept_chat_kept"))
        else:
            lines.append(template(domain, "utter_details_not_kept"))
        dispatcher.utter_message(text=" ".join(lines),
                                 json_message={"record": dt.consent_record(decision, tracker.get_slot,
                                                                           tracker.events)},
                                 buttons=_next_buttons(domain, tracker, self._runtime))
        return []


class ActionDetailsStop(Action):
    """Leaves the form, says what was kept; "continue" carries on where it stopped."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_details_stop"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        kept = tracker.get_slot(cl.CONSENT_SLOT) is True
        given = dt.answers(tracker.get_slot)
        text = template(domain, "utter_details_stopped")
        custom = None
        if kept and given:
            text += " " + template(domain, "utter_details_stopped_kept")
            custom = {"record": dt.consent_record(self._runtime.kb.decision, tracker.get_slot, tracker.events)}
        else:
            text += " " + template(domain, "utter_details_stopped_not_kept")
        text += " " + template(domain, "utter_details_later")
        dispatcher.utter_message(text=text, json_message=custom)
        return [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet(PAUSED_SLOT, dt.FORM)]
