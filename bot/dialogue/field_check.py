"""The field-test check's messages and progress (the action: actions/field_check.py).

Offered only while the clinic runs a field test (``field_check: true`` in clinic.yml) and
the knowledge base has the questions (``knowledge/decision/field_check.yml``):

* **before**: the first time a person opens "Help me decide", the offer comes instead of the
  menu (:func:`offer_before`, called by ``action_decision_menu``); "Skip" or the end of the
  check shows the menu;
* **after**: once, after the readiness result or the consultation summary
  (:func:`offer_after`, called by those actions), unless the person skipped or stopped the
  first check. When the four readiness (SURE) questions have been answered in the chat,
  their yes count is used and only the five knowledge questions are asked again.

Progress is the ``field_check_state`` slot: what was offered or done, the phase in progress,
the step and the two counts so far; never the answers themselves. Every sentence is a
response in domain.yml; the questions and answers are knowledge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Protocol

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from bot.dialogue.decision import button, response_buttons, source_list
from bot.dialogue.replies import command, readable_date, template
from bot.kb.field_check import CheckQuestion, FieldCheck
from bot.kb.model import KnowledgeBase
from contract.payloads import FIELD_CHECK_PHASES

STATE_SLOT = "field_check_state"
INTENT = "field_check"
ENTITY = "choice"
PHASES = FIELD_CHECK_PHASES
SKIP = "skip"
# The readiness_form slots (actions/readiness.py; tests/actions/test_field_check.py checks
# that both agree), and the response of each answer's button title.
SURE_SLOTS: tuple[str, ...] = ("sure_sure", "sure_informed", "sure_values", "sure_support")
SURE_ANSWERS = {"yes": "utter_answer_yes", "no": "utter_answer_no", "not_sure": "utter_answer_not_sure"}
# What a phase's entry in the state may say.
OFFERED, DECLINED, STOPPED, DONE = "offered", "declined", "stopped", "done"


class Dispatcher(Protocol):
    def utter_message(self, **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class State:
    before: str | None = None  # offered | declined | stopped | done
    after: str | None = None
    phase: str | None = None  # the check in progress, if any
    step: int = 0  # index of the question being asked
    known: int = 0  # right answers so far
    sure: int = 0  # SURE yeses so far
    sure_given: int | None = None  # the readiness yes count, when reused (after only)

    @classmethod
    def of(cls, tracker: Tracker) -> "State":
        raw = tracker.get_slot(STATE_SLOT)
        if not isinstance(raw, dict):
            return cls()
        try:
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})
        except TypeError:
            return cls()

    def event(self) -> SlotSet:
        return SlotSet(STATE_SLOT, asdict(self))

    def get(self, phase: str) -> str | None:
        return self.before if phase == "before" else self.after

    def mark(self, phase: str, value: str) -> "State":
        return replace(self, **{phase: value})

    def idle(self) -> "State":
        """No check in progress; what was offered or done is kept."""
        return State(before=self.before, after=self.after)


def enabled(kb: KnowledgeBase) -> FieldCheck | None:
    """The questions, when the clinic runs a field test and the knowledge base has them."""
    return kb.field_check if kb.clinic.field_check and kb.field_check is not None else None


def choice_command(choice: str) -> str:
    return command(INTENT, {ENTITY: choice})


def _button(domain: Mapping[str, Any], title_response: str, choice: str) -> dict[str, str]:
    return {"title": template(domain, title_response), "payload": choice_command(choice)}


def stop_button(domain: Mapping[str, Any]) -> dict[str, str]:
    return _button(domain, "utter_button_field_check_stop", SKIP)


def sure_reused(tracker: Tracker) -> int | None:
    """The readiness yes count, when all four SURE questions have an answer in this chat."""
    answers = [tracker.get_slot(slot) for slot in SURE_SLOTS]
    if all(a in SURE_ANSWERS for a in answers):
        return sum(a == "yes" for a in answers)
    return None


def offer_message(domain: Mapping[str, Any], tracker: Tracker, kb: KnowledgeBase, phase: str) -> dict[str, Any]:
    """The offer of ``phase``'s check: what it is, that it is anonymous, start or skip."""
    if phase == "before":
        name, start, no = "utter_field_check_offer_before", "utter_button_field_check_start", "utter_button_field_check_skip"
    else:
        reused = sure_reused(tracker) is not None
        name = "utter_field_check_offer_after_readiness" if reused else "utter_field_check_offer_after"
        start, no = "utter_button_field_check_again", "utter_button_field_check_no"
    text = template(domain, name, clinic=kb.clinic.name)
    if tracker.get_slot("transcript_consent") == "yes":
        text += " " + template(domain, "utter_field_check_chat_kept")
    return {"text": text, "buttons": [_button(domain, start, f"start-{phase}"), _button(domain, no, SKIP)]}


def offer_before(kb: KnowledgeBase, tracker: Tracker, domain: Mapping[str, Any]
                 ) -> tuple[dict[str, Any], list[EventType]] | None:
    """The offer to show instead of the decision menu, the first time only; None otherwise."""
    state = State.of(tracker)
    if enabled(kb) is None or state.before is not None or state.after is not None or state.phase:
        return None
    return offer_message(domain, tracker, kb, "before"), [state.mark("before", OFFERED).event()]


def offer_after(dispatcher: Dispatcher, tracker: Tracker, domain: Mapping[str, Any],
                kb: KnowledgeBase) -> list[EventType]:
    """Offer the second check once (after the readiness result or the summary), unless the
    person skipped or stopped the first one. A first check left half-way is dropped."""
    state = State.of(tracker)
    if enabled(kb) is None or state.after is not None or state.before in (DECLINED, STOPPED):
        return []
    dispatcher.utter_message(**offer_message(domain, tracker, kb, "after"))
    if state.phase is not None:  # the first check, left half-way: nothing of it was sent
        state = state.idle().mark("before", STOPPED)
    return [state.mark("after", OFFERED).event()]


def menu_message(domain: Mapping[str, Any], kb: KnowledgeBase) -> dict[str, Any]:
    """The decision menu, as ``action_decision_menu`` sends it."""
    return {"text": template(domain, "utter_decision_menu", clinic=kb.clinic.name),
            "buttons": response_buttons(domain, "utter_decision_menu")}


def back_to_menu(domain: Mapping[str, Any]) -> dict[str, str]:
    return button(domain, "utter_button_decision_menu", "decision_help")


def steps(check: FieldCheck, state: State) -> list[CheckQuestion | str]:
    """The questions of ``state``'s check: the knowledge ones, then the SURE slots unless the
    readiness answers are reused."""
    sure = [] if state.sure_given is not None else list(SURE_SLOTS)
    return [*check.questions, *sure]


def question_message(domain: Mapping[str, Any], check: FieldCheck, state: State) -> dict[str, Any]:
    """The question at ``state.step``: its answers as buttons, and "Stop the check"."""
    found = steps(check, state)
    step = found[min(state.step, len(found) - 1)]
    if isinstance(step, CheckQuestion):
        text = template(domain, "utter_field_check_question", number=state.step + 1,
                        total=len(check.questions), question=step.text)
        buttons = [{"title": a.text, "payload": choice_command(f"{step.id}={a.id}")} for a in step.answers]
        return {"text": text, "buttons": [*buttons, stop_button(domain)]}
    buttons = [_button(domain, title, f"{step}={value}") for value, title in SURE_ANSWERS.items()]
    return {"text": template(domain, f"utter_ask_{step}"), "buttons": [*buttons, stop_button(domain)]}


def answers_message(domain: Mapping[str, Any], kb: KnowledgeBase, check: FieldCheck) -> dict[str, Any]:
    """The right answers (after the second check only), each with why, and their sources."""
    lines = [template(domain, "utter_field_check_answers", reviewed=readable_date(check.reviewed))]
    lines += [template(domain, "utter_field_check_answer", question=q.text, answer=q.right.text, why=q.why)
              for q in check.questions]
    return {
        "text": "\n\n".join(lines),
        "buttons": [back_to_menu(domain)],
        "json_message": {"sources": source_list(kb, [sid for q in check.questions for sid in q.sources]),
                         "reviewed": check.reviewed, "review_due": check.review_due},
    }
