"""The field-test check (actions/field_check.py, bot/dialogue/field_check.py): the offers at
the start and the end of the guided steps, skip and stop, the scoring, and the one anonymous
block a finished check sends (phase and two counts, nothing else)."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.decision import ActionDecisionMenu
from actions.field_check import ActionFieldCheck
from actions.readiness import SURE_SLOTS, ActionReadinessResult
from actions.summary import ActionConsultationSummary
from bot.dialogue import field_check as fc
from bot.kb.runtime import Runtime
from contract import payloads
from contract.commands import parse

CONVERSATION = "test-conversation"  # the tracker's sender id (tests/actions/conftest.py)


@pytest.fixture
def field_test(runtime: Any) -> Runtime:
    """The real knowledge base, with the clinic running a field test."""
    kb = copy.copy(runtime.kb)
    kb.clinic = dataclasses.replace(kb.clinic, field_check=True)
    return Runtime(kb=kb, retriever=runtime.retriever, normaliser=runtime.normaliser)


class Chat:
    """Presses the check's buttons one after the other, carrying the slots along."""

    def __init__(self, runtime: Runtime, domain: dict, tracker_factory: Any, **slots: Any) -> None:
        self.runtime, self.domain, self.make = runtime, domain, tracker_factory
        self.slots: dict[str, Any] = dict(slots)
        self.messages: list[dict[str, Any]] = []

    def _apply(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event.get("event") == "slot":
                self.slots[event["name"]] = event["value"]

    async def run(self, action: Any, text: str = "/x", intent: str = "field_check",
                  entities: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        dispatcher = CollectingDispatcher()
        tracker = self.make(text, intent, entities=entities, slots=dict(self.slots))
        events = await action.run(dispatcher, tracker, self.domain)
        self._apply(events)
        self.messages = dispatcher.messages
        return dispatcher.messages

    async def end(self) -> list[dict[str, Any]]:
        """The end of the guided steps, as the summary and the readiness result offer it."""
        dispatcher = CollectingDispatcher()
        self._apply(fc.offer_after(dispatcher, self.make("/get_summary", "get_summary", slots=dict(self.slots)),
                                   self.domain, self.runtime.kb))
        self.messages = dispatcher.messages
        return dispatcher.messages

    async def menu(self) -> list[dict[str, Any]]:
        return await self.run(ActionDecisionMenu(self.runtime), "/decision_help", "decision_help")

    async def press(self, title: str) -> list[dict[str, Any]]:
        """Press the button titled ``title`` of the last messages."""
        buttons = {b["title"]: b["payload"] for m in self.messages for b in m.get("buttons") or []}
        assert title in buttons, (title, list(buttons))
        command = parse(buttons[title])
        assert command.intent == "field_check", buttons[title]
        entities = [{"entity": k, "value": v} for k, v in command.entities.items()]
        return await self.run(ActionFieldCheck(self.runtime), buttons[title], command.intent, entities)

    @property
    def state(self) -> fc.State:
        return fc.State(**self.slots[fc.STATE_SLOT])

    def blocks(self) -> list[dict[str, Any]]:
        return [m["custom"]["field_check"] for m in self.messages
                if isinstance(m.get("custom"), dict) and "field_check" in m["custom"]]

    def titles(self) -> list[str]:
        return [b["title"] for m in self.messages for b in m.get("buttons") or []]

    def text(self) -> str:
        return "\n".join(m.get("text") or "" for m in self.messages)


def questions(runtime: Runtime) -> list[Any]:
    return list(runtime.kb.field_check.questions)


async def answer_all(chat: Chat, right: list[bool], sure: list[str]) -> None:
    """Answer the five questions (right or a wrong answer each), then the SURE ones."""
    for question, ok in zip(questions(chat.runtime), right):
        assert question.text in chat.text()
        wrong = next(a for a in question.answers if not a.correct)
        await chat.press(question.right.text if ok else wrong.text)
    titles = {"yes": "Yes", "no": "No", "not_sure": "Not sure"}
    for value in sure:
        await chat.press(titles[value])


def test_the_sure_slots_are_the_readiness_forms() -> None:
    assert fc.SURE_SLOTS == SURE_SLOTS


def test_the_check_is_on_only_during_a_field_test(runtime: Any, field_test: Runtime) -> None:
    assert runtime.kb.clinic.field_check is False, "the shipped clinic.yml runs no field test"
    assert fc.enabled(runtime.kb) is None
    assert fc.enabled(field_test.kb) is runtime.kb.field_check


@pytest.mark.asyncio
async def test_without_a_field_test_the_menu_is_as_before(runtime, domain, tracker_factory):
    chat = Chat(runtime, domain, tracker_factory)
    [message] = await chat.menu()
    assert "Let's look at your choice" in message["text"]
    assert fc.STATE_SLOT not in chat.slots
    assert fc.offer_after(CollectingDispatcher(), tracker_factory("x", "get_summary"), domain, runtime.kb) == []
    [reply] = await chat.run(ActionFieldCheck(runtime), "can i do the quiz")
    assert reply["text"] == "There is no short check to do right now."


@pytest.mark.asyncio
async def test_the_first_menu_offers_the_check_saying_it_is_anonymous(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory, transcript_consent="no")
    [offer] = await chat.menu()
    assert "anonymous, not linked to this chat" in offer["text"]
    assert "skip it, or stop at any time" in offer["text"]
    assert "button presses will show" not in offer["text"]
    assert chat.titles() == ["Start the check", "Skip"]
    assert chat.state.before == "offered"
    # Offered once: the next "Help me decide" is the menu itself.
    [menu] = await chat.menu()
    assert menu["text"].startswith("Let's look at your choice")
    assert "Start the check" not in chat.titles()


@pytest.mark.asyncio
async def test_with_the_chat_kept_the_offer_says_the_presses_show_in_it(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory, transcript_consent="yes")
    [offer] = await chat.menu()
    assert "anonymous, not linked to this chat" in offer["text"]
    assert "You let the clinic keep this chat, so your button presses will show in it" in offer["text"]


@pytest.mark.asyncio
async def test_skip_leads_to_the_menu_and_sends_nothing(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory)
    await chat.menu()
    await chat.press("Skip")
    assert chat.messages[0]["text"] == "OK, no check. Nothing was sent to the clinic."
    assert chat.messages[1]["text"].startswith("Let's look at your choice")
    assert "Health checklist" in chat.titles()
    assert chat.blocks() == []
    assert chat.state == fc.State(before="declined")
    # Who said no at the start is not asked again at the end.
    assert fc.offer_after(CollectingDispatcher(), tracker_factory("x", "get_summary", slots=chat.slots),
                          domain, field_test.kb) == []


@pytest.mark.asyncio
async def test_each_question_offers_its_answers_and_a_way_to_stop(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory)
    await chat.menu()
    await chat.press("Start the check")
    first = questions(field_test)[0]
    assert chat.messages[0]["text"] == f"Question 1 of 5: {first.text}"
    assert chat.titles() == [a.text for a in first.answers] + ["Stop the check"]
    assert not chat.messages[0].get("custom"), "a question gives no sources away"


@pytest.mark.asyncio
@pytest.mark.parametrize(("right", "sure", "known", "yeses"), [
    ([True] * 5, ["yes"] * 4, 5, 4),
    ([False] * 5, ["no", "not_sure", "no", "not_sure"], 0, 0),
    ([True, False, True, False, True], ["yes", "no", "yes", "not_sure"], 3, 2),
])
async def test_a_finished_check_sends_its_score_and_nothing_else(
        field_test, domain, tracker_factory, right, sure, known, yeses):
    chat = Chat(field_test, domain, tracker_factory, transcript_consent="yes")
    await chat.menu()
    await chat.press("Start the check")
    await answer_all(chat, right, sure)
    [block] = chat.blocks()
    assert block == {"phase": "before", "knowledge": known, "sure": yeses}
    assert payloads.check_custom({"field_check": block}) == ({"field_check": block}, [])
    # The message with the block carries nothing else: no id, no answer, no text of the patient.
    [carrier] = [m for m in chat.messages if m.get("custom")]
    assert carrier["custom"] == {"field_check": block}
    assert CONVERSATION not in json.dumps(carrier["custom"])
    # Then the menu, and the first check is done; its answers are not shown.
    assert chat.messages[-1]["text"].startswith("Let's look at your choice")
    assert "Here are the answers" not in chat.text()
    assert chat.state == fc.State(before="done")


@pytest.mark.asyncio
async def test_the_sure_questions_follow_the_five_with_the_readiness_wording(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory)
    await chat.menu()
    await chat.press("Start the check")
    await answer_all(chat, [True] * 5, [])
    assert chat.messages[0]["text"] == domain["responses"]["utter_ask_sure_sure"][0]["text"]
    assert chat.titles() == ["Yes", "No", "Not sure", "Stop the check"]
    assert chat.state.step == 5 and chat.state.known == 5
    # The readiness form's own slots stay untouched: the summary reads those.
    assert not any(slot in chat.slots for slot in SURE_SLOTS)


@pytest.mark.asyncio
async def test_stopping_half_way_sends_nothing_and_forgets_the_progress(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory)
    await chat.menu()
    await chat.press("Start the check")
    await chat.press(questions(field_test)[0].right.text)
    await chat.press("Stop the check")
    assert chat.messages[0]["text"] == "OK, I've stopped the check. Nothing was sent to the clinic."
    assert chat.messages[1]["text"].startswith("Let's look at your choice")
    assert chat.blocks() == []
    assert chat.state == fc.State(before="stopped")


@pytest.mark.asyncio
async def test_an_old_or_unknown_answer_asks_the_same_question_again(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory)
    await chat.menu()
    await chat.press("Start the check")
    first, second = questions(field_test)[:2]
    await chat.press(first.right.text)
    before = chat.state
    for choice in (f"{first.id}={first.right.id}", f"{second.id}=no-such-answer", "sure_sure=yes", "nonsense"):
        messages = await chat.run(ActionFieldCheck(field_test), entities=[{"entity": "choice", "value": choice}])
        assert messages[0]["text"] in (f"Question 2 of 5: {second.text}", "There is no short check to do right now.")
        assert chat.state == before
    assert chat.blocks() == []


@pytest.mark.asyncio
async def test_at_the_end_the_check_is_offered_again_once(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory)
    await chat.menu()
    await chat.press("Start the check")
    await answer_all(chat, [False] * 5, ["no"] * 4)
    [offer] = await chat.end()
    assert "One last thing" in offer["text"] and "anonymous, not linked to this chat" in offer["text"]
    assert "There are 9 quick questions" in offer["text"]
    assert [b["title"] for b in offer["buttons"]] == ["Do the check", "No thanks"]
    assert chat.state == fc.State(before="done", after="offered")
    again = CollectingDispatcher()
    assert fc.offer_after(again, tracker_factory("x", "get_summary", slots=dict(chat.slots)), domain,
                          field_test.kb) == [] and again.messages == [], "offered once"

    await chat.press("Do the check")
    await answer_all(chat, [True] * 5, ["yes"] * 4)
    [block] = chat.blocks()
    assert block == {"phase": "after", "knowledge": 5, "sure": 4}
    assert chat.state == fc.State(before="done", after="done")
    # After the second check, the right answers with why and where they come from.
    answers = chat.messages[-1]
    for question in questions(field_test):
        assert f"{question.text} {question.right.text}. {question.why}" in answers["text"]
    cited = {s["id"] for s in answers["custom"]["sources"]}
    assert cited == {sid for q in questions(field_test) for sid in q.sources}
    assert [b["title"] for b in answers["buttons"]] == ["Back to the decision menu"]
    [done] = await chat.run(ActionFieldCheck(field_test), "can i do the quiz")
    assert done["text"] == "You have done this check already. Thank you!"


@pytest.mark.asyncio
async def test_after_the_readiness_questions_their_answers_are_counted(field_test, domain, tracker_factory):
    answers = {"sure_sure": "yes", "sure_informed": "no", "sure_values": "yes", "sure_support": "yes"}
    chat = Chat(field_test, domain, tracker_factory, **answers)
    await chat.run(ActionReadinessResult(field_test), "/affirm", "affirm")
    result, offer = chat.messages
    assert "3 of 4" in result["text"]
    assert "5 quick questions about the facts" in offer["text"]
    assert chat.slots["sure_result"] == "3 of 4"
    await chat.press("Do the check")
    await answer_all(chat, [True, True, False, False, False], [])
    [block] = chat.blocks()
    assert block == {"phase": "after", "knowledge": 2, "sure": 3}


@pytest.mark.asyncio
async def test_no_thanks_at_the_end_sends_nothing(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory, field_check_state={"before": "done"})
    await chat.end()
    await chat.press("No thanks")
    [message] = chat.messages
    assert message["text"] == "OK, no check. Nothing was sent to the clinic."
    assert [b["title"] for b in message["buttons"]] == ["Back to the decision menu"]
    assert chat.state == fc.State(before="done", after="declined")


@pytest.mark.asyncio
async def test_asked_for_in_words_it_offers_the_check_due_or_repeats_the_question(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory)
    [offer] = await chat.run(ActionFieldCheck(field_test), "can i do the quiz")
    assert "Before we start" in offer["text"]
    await chat.press("Start the check")
    [again] = await chat.run(ActionFieldCheck(field_test), "where is the quiz")
    assert again["text"].startswith("Question 1 of 5")


def test_the_block_refuses_anything_but_its_three_fields() -> None:
    assert payloads.field_check("after", 5, 4) == {"field_check": {"phase": "after", "knowledge": 5, "sure": 4}}
    for bad in (("during", 1, 1), ("before", 6, 1), ("before", 1, 5), ("before", -1, 0), ("before", True, 0)):
        with pytest.raises(ValueError):
            payloads.field_check(*bad)


@pytest.mark.asyncio
async def test_the_summary_offers_the_second_check_after_itself(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory, field_check_state={"before": "done"})
    await chat.run(ActionConsultationSummary(field_test), "/get_summary", "get_summary")
    summary, offer = chat.messages
    assert summary["custom"]["summary"]
    assert offer["text"].startswith("One last thing")
    assert chat.state == fc.State(before="done", after="offered")


@pytest.mark.asyncio
async def test_a_first_check_left_half_way_is_dropped_when_the_second_is_offered(field_test, domain, tracker_factory):
    chat = Chat(field_test, domain, tracker_factory)
    await chat.menu()
    await chat.press("Start the check")
    await chat.press(questions(field_test)[0].right.text)
    [offer] = await chat.end()  # the person left the check to read the summary
    assert offer["text"].startswith("One last thing")
    assert chat.state == fc.State(before="stopped", after="offered")
