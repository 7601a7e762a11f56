"""The candidacy checklist (``checklist_form``): consent, the questions, stop, change, result.

The form first asks whether the answers may be kept (``checklist_consent``). With consent it
asks about each situation in knowledge/decision/checklist.yml, in that order (slots
``check_<item id>``: yes / no / not_sure / prefer_not_to_say). Without consent it asks
nothing and ``action_checklist_result`` shows every point with why it matters.

The result lists points to raise with a clinician and why each matters, with sources. It
never says whether the person can have the treatment. Answers go to the API (the ``record``
block) only with consent.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.dialogue import checklist as cl
from bot.dialogue.forms import end_pause
from bot.dialogue.replies import command, template
from bot.kb.runtime import Runtime, get_runtime


def next_step_buttons(domain: DomainDict, consent: bool) -> list[dict[str, str]]:
    """What the person can do after the checklist: change an answer, summary, callback."""
    buttons = [{"title": template(domain, "utter_button_change_answer"), "payload": command("change_answer")}] \
        if consent else []
    buttons.append({"title": template(domain, "utter_button_summary"), "payload": command("get_summary")})
    buttons.append({"title": template(domain, "utter_button_callback"), "payload": command("request_callback")})
    return buttons


class ValidateChecklistForm(FormValidationAction):
    """Asks every item only with consent; clears the 'paused' marks when the form resumes."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "validate_checklist_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        if tracker.get_slot(cl.CONSENT_SLOT) is False:
            return [cl.CONSENT_SLOT]
        items = [s for s in cl.item_slots(self._runtime.kb.decision) if s in domain_slots]
        return [cl.CONSENT_SLOT, *items]

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        resumed: list[EventType] = [*end_pause(tracker, cl.FORM)]
        if tracker.get_slot(cl.CHANGE_SLOT):
            resumed.append(SlotSet(cl.CHANGE_SLOT, False))
        return resumed + await super().run(dispatcher, tracker, domain)


class ActionChecklistStart(Action):
    """Before the form: a finished checklist (or a refused one) starts again from the top;
    one stopped midway with consent carries on where it stopped."""

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
        if consent is False or (consent is True and len(answered) == total):
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
        if consent:
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
        else:
            lines = [template(domain, "utter_checklist_not_kept")]
            for item in decision.checklist:
                lines.append(template(domain, "utter_checklist_point_general", title=item.title, why=item.why))
                sources += item.sources
        general = decision.general_questions()
        if general:
            lines.append(template(domain, "utter_checklist_general_intro") + "\n"
                         + "\n".join("- " + q.text for q in general))
            for question in general:
                sources += question.sources
        if consent:
            lines.append(template(domain, "utter_checklist_kept"))
            # Every item: the answers given, null (delete) for the others.
            custom: dict[str, Any] = {"record": cl.record(decision, answered)}
        else:
            # Only deletions: answers kept from an earlier run with consent are removed.
            custom = {"record": cl.record(decision, {})}
        custom["sources"] = cl.source_payload(kb, sources)
        dispatcher.utter_message(text="\n\n".join(lines), json_message=custom)
        next_text = "utter_checklist_next" if consent else "utter_checklist_next_no_consent"
        dispatcher.utter_message(text=template(domain, next_text), buttons=next_step_buttons(domain, consent))
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
        answered = cl.answers(decision, tracker.get_slot) if consent else {}
        text = template(domain, "utter_checklist_stopped")
        custom = None
        if answered:
            total = len(decision.checklist) if decision else 0
            text += " " + template(domain, "utter_checklist_stopped_kept", count=len(answered), total=total)
            custom = {"record": cl.record(decision, answered)}
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
        answered = cl.answers(decision, tracker.get_slot) if tracker.get_slot(cl.CONSENT_SLOT) is True else {}
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
