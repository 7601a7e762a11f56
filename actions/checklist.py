"""The candidacy checklist (``checklist_form``): consent, the questions, stop, change, result.

The form first asks whether the answers may be kept (``checklist_consent``), then asks about
each situation in knowledge/decision/checklist.yml, in that order (slots ``check_<item id>``:
yes / no / not_sure / prefer_not_to_say), with consent or without.

The result lists points to raise with a clinician and why each matters, with sources. It
never says whether the person can have the treatment. Answers go to the API (the ``record``
block, which the API keeps for staff) only with consent. Without it they stay in Rasa's
tracker slots only: they make this chat's list and its chat summary, and are erased with the
conversation; the record sent then only deletes (``null``) what an earlier consent kept.
The consent is shared with the questions for the clinician (actions/details.py), so the
record covers both (``bot.dialogue.details.consent_record``).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.dialogue import checklist as cl
from bot.dialogue import details as dt
from bot.dialogue.forms import end_pause
from bot.dialogue.replies import command, template
from bot.kb.runtime import Runtime, get_runtime


def next_step_buttons(domain: DomainDict, details: bool = True) -> list[dict[str, str]]:
    """What the person can do after the checklist: change an answer (kept or not: the list
    is theirs either way), the questions for the clinician (``details``), summary, callback."""
    buttons = [{"title": template(domain, "utter_button_change_answer"), "payload": command("change_answer")}]
    if details:
        buttons.append({"title": template(domain, "utter_button_details"), "payload": command("describe_hair_loss")})
    buttons.append({"title": template(domain, "utter_button_summary"), "payload": command("get_summary")})
    buttons.append({"title": template(domain, "utter_button_callback"), "payload": command("request_callback")})
    return buttons


class ValidateChecklistForm(FormValidationAction):
    """Asks every item, kept or not; clears the 'paused' marks when the form resumes."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "validate_checklist_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        items = [s for s in cl.item_slots(self._runtime.kb.decision) if s in domain_slots]
        return [cl.CONSENT_SLOT, *items]

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        resumed: list[EventType] = [*end_pause(tracker, cl.FORM)]
        if tracker.get_slot(cl.CHANGE_SLOT):
            resumed.append(SlotSet(cl.CHANGE_SLOT, False))
        return resumed + await super().run(dispatcher, tracker, domain)


class ActionChecklistStart(Action):
    """Before the form: a finished checklist starts again from the top, and one not begun asks
    the consent again (it may have been given for the questions for the clinician, without
    this checklist's explanation); one stopped midway carries on where it stopped."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_checklist_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        decision = self._runtime.kb.decision
        events: list[EventType] = [SlotSet(cl.CHANGE_SLOT, False), *end_pause(tracker, cl.FORM)]
        consent = tracker.get_slot(cl.CONSENT_SLOT)
        answered = cl.answers(decision, tracker.get_slot)
        total = len(decision.checklist) if decision else 0
        if consent is not None and (not answered or len(answered) == total):
            events.append(SlotSet(cl.CONSENT_SLOT, None))
            events += [SlotSet(slot, None) for slot in cl.item_slots(decision)]
        return events


class ActionChecklistResult(Action):
    """The points to raise with a clinician, with sources; never a verdict."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_checklist_result"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        kb = self._runtime.kb
        decision = kb.decision
        if decision is None:
            dispatcher.utter_message(text=template(domain, "utter_checklist_unavailable"))
            return []
        consent = tracker.get_slot(cl.CONSENT_SLOT) is True
        sources: list[str] = []
        # Kept or not, the list is made from the answers given in this chat.
        answered = cl.answers(decision, tracker.get_slot)
        lines = [template(domain, "utter_checklist_points_intro")]
        points = cl.items_with(decision, answered, cl.POINT_ANSWERS)
        for item in points:
            lines.append(template(domain, f"utter_checklist_point_{answered[item.id]}",
                                  title=item.title, why=item.why))
            sources += item.sources
        private = cl.items_with(decision, answered, ["prefer_not_to_say"])
        if private:
            lines.append(template(domain, "utter_checklist_point_private",
                                  titles="; ".join(item.title.lower() for item in private)))
        if not points:
            lines.append(template(domain, "utter_checklist_no_points"))
        general = decision.general_questions()
        if general:
            lines.append(template(domain, "utter_checklist_general_intro") + "\n"
                         + "\n".join("- " + q.text for q in general))
            for question in general:
                sources += question.sources
        if consent:
            lines.append(template(domain, "utter_checklist_kept"))
        elif tracker.get_slot("transcript_consent") == "yes":
            lines.append(template(domain, "utter_checklist_not_kept_chat_kept"))
        else:
            lines.append(template(domain, "utter_checklist_not_kept"))
        # With consent every answer, null (delete) for the others; without, only deletions:
        # answers kept from an earlier round with consent are removed.
        custom: dict[str, Any] = {"record": dt.consent_record(decision, tracker.get_slot, tracker.events)}
        custom["sources"] = cl.source_payload(kb, sources)
        dispatcher.utter_message(text="\n\n".join(lines), json_message=custom)
        details = not all(tracker.get_slot(slot) not in (None, "", []) for slot in dt.QUESTION_SLOTS)
        next_text = "utter_checklist_next" if details else "utter_checklist_next_details_done"
        dispatcher.utter_message(text=template(domain, next_text), buttons=next_step_buttons(domain, details))
        return []


class ActionChecklistStop(Action):
    """Leaves the form, says what was kept, offers the points so far or to carry on."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_checklist_stop"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        decision = self._runtime.kb.decision
        consent = tracker.get_slot(cl.CONSENT_SLOT) is True
        answered = cl.answers(decision, tracker.get_slot)
        text = template(domain, "utter_checklist_stopped")
        custom = None
        if answered and consent:
            total = len(decision.checklist) if decision else 0
            text += " " + template(domain, "utter_checklist_stopped_kept", count=len(answered), total=total)
            custom = {"record": dt.consent_record(decision, tracker.get_slot, tracker.events)}
        elif answered:
            text += " " + template(domain, "utter_checklist_stopped_not_kept")
        else:
            text += " " + template(domain, "utter_checklist_stopped_none")
        dispatcher.utter_message(text=text, json_message=custom)
        dispatcher.utter_message(response="utter_checklist_stop_offer")
        return [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet(cl.PAUSED_SLOT, cl.FORM),
                SlotSet(cl.CHANGE_SLOT, False)]


class ActionChecklistChange(Action):
    """Asks which answer to change, with a button for each item answered."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_checklist_change"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        decision = self._runtime.kb.decision
        events: list[EventType] = []
        in_form = (tracker.active_loop or {}).get("name") == cl.FORM
        if in_form:
            events += [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet(cl.PAUSED_SLOT, cl.FORM)]
        answered = cl.answers(decision, tracker.get_slot)  # kept or not: the list is theirs
        if not answered:
            text = template(domain, "utter_checklist_change_nothing")
            if in_form:
                text += " " + template(domain, "utter_checklist_later")
                dispatcher.utter_message(text=text)
            else:
                dispatcher.utter_message(text=text, buttons=[
                    {"title": template(domain, "utter_button_checklist"), "payload": command("start_checklist")}])
            return events + [SlotSet(cl.CHANGE_SLOT, False)]
        buttons = [
            {"title": f"{item.title}: {cl.answer_label(domain, answered[item.id])}",
             "payload": command("choose", {"choice": item.id})}
            for item in cl.items_with(decision, answered, cl.ANSWERS)
        ]
        dispatcher.utter_message(text=template(domain, "utter_checklist_change_which"), buttons=buttons)
        return events + [SlotSet(cl.CHANGE_SLOT, True)]


class ActionChecklistChangeItem(Action):
    """Clears the chosen item's answer; the form then asks it again."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_checklist_change_item"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        decision = self._runtime.kb.decision
        choice = next(tracker.get_latest_entity_values("choice"), None)
        events: list[EventType] = [SlotSet(cl.CHANGE_SLOT, False), SlotSet(cl.PAUSED_SLOT, None)]
        known = {item.id for item in decision.checklist} if decision else set()
        if choice not in known:
            dispatcher.utter_message(text=template(domain, "utter_checklist_change_unknown"))
            return events
        return events + [SlotSet(cl.slot_name(choice), None)]
