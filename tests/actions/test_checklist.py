"""The candidacy checklist actions (actions/checklist.py) with the real knowledge base."""

from __future__ import annotations

import re
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.checklist import (
    ActionChecklistChange,
    ActionChecklistChangeItem,
    ActionChecklistResult,
    ActionChecklistStart,
    ActionChecklistStop,
    ValidateChecklistForm,
)
from bot.kb.decision import CHECKLIST_IDS
from bot.kb.runtime import Runtime

# What a verdict about the person would look like, in any of the usual wordings.
VERDICT = re.compile(
    r"\byou (can|cannot|can't|could|may|should|shouldn't|should not|must not) (not )?(have|get|go ahead with)"
    r" (it|this|the treatment|mesotherapy|meso)\b"
    r"|\byou are (not )?(a )?(suitable|eligible|good candidate)|\bnot suitable\b|\bsuitable for you\b"
    r"|\bsafe for you\b|\bunsafe for you\b|\bruled? (it )?out\b",
    re.IGNORECASE,
)


def tracker(slots: dict[str, Any] | None = None, intent: str = "affirm", form: str | None = None,
            entities: list[dict[str, Any]] | None = None) -> Tracker:
    latest = {"text": "x", "intent": {"name": intent, "confidence": 1.0}, "entities": entities or []}
    events = [{"event": "user", "text": "x", "parse_data": latest}]
    return Tracker("test", dict(slots or {}), latest, events, False, None,
                   {"name": form} if form else {}, "action_listen")


def consented(**answers: str) -> dict[str, Any]:
    return {"checklist_consent": True, **{f"check_{k}": v for k, v in answers.items()}}


async def run(action: Any, tr: Tracker, domain: dict) -> tuple[list[dict], list[dict]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tr, domain)
    return dispatcher.messages, events


def slot_events(events: list[dict]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def all_text(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


# --- the form ------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_with_consent_every_item_is_asked_in_the_knowledge_order(runtime: Runtime, domain: dict) -> None:
    action = ValidateChecklistForm(runtime)
    slots = list(domain["slots"])
    required = await action.required_slots(slots, CollectingDispatcher(), tracker(consented()), domain)
    assert required == ["checklist_consent"] + [f"check_{i}" for i in CHECKLIST_IDS]
    # The domain's form lists the same slots, and each has a question with the four answers.
    assert domain["forms"]["checklist_form"]["required_slots"] == required
    for item in CHECKLIST_IDS:
        buttons = domain["responses"][f"utter_ask_check_{item}"][0]["buttons"]
        assert [b["payload"] for b in buttons] == ["/affirm", "/deny", "/not_sure", "/prefer_not_to_say"]


@pytest.mark.asyncio
async def test_declining_storage_still_asks_every_item(runtime: Runtime, domain: dict) -> None:
    action = ValidateChecklistForm(runtime)
    required = await action.required_slots(list(domain["slots"]), CollectingDispatcher(),
                                           tracker({"checklist_consent": False}), domain)
    assert required == ["checklist_consent"] + [f"check_{i}" for i in CHECKLIST_IDS]
    _, events = await run(action, tracker({"checklist_consent": False}, form="checklist_form"), domain)
    # Not ended (before, a refusal set requested_slot to None): the form asks on, in the domain order.
    assert "requested_slot" not in slot_events(events)


def test_the_consent_question_says_declining_still_asks_and_keeps_nothing(domain: dict) -> None:
    variants = domain["responses"]["utter_ask_checklist_consent"]
    plain = next(v for v in variants if not v.get("condition"))
    assert "If you say no, I'll still ask" in plain["text"]
    assert "They won't be kept for the clinic." in plain["text"]
    # When the chat itself is kept, the question does not promise what the transcript breaks.
    kept_chat = next(v for v in variants if v.get("condition"))
    assert kept_chat["condition"] == [{"type": "slot", "name": "transcript_consent", "value": "yes"}]
    assert "staff could still read them" in kept_chat["text"]
    assert "won't be kept for the clinic" not in kept_chat["text"]
    for variant in variants:
        assert [b["payload"] for b in variant["buttons"]] == ["/affirm", "/deny"]


@pytest.mark.asyncio
async def test_resuming_the_form_clears_the_paused_mark(runtime: Runtime, domain: dict) -> None:
    slots = {**consented(pregnancy="no", blood_thinners="yes"), "paused_form": "checklist_form"}
    _, events = await run(ValidateChecklistForm(runtime), tracker(slots, intent="continue_form",
                                                                 form="checklist_form"), domain)
    assert slot_events(events)["paused_form"] is None
    # The rest is the domain's order, which Rasa's form follows by itself.
    assert "requested_slot" not in slot_events(events)


@pytest.mark.asyncio
async def test_typed_answers_map_through_the_intents(domain: dict) -> None:
    mappings = domain["slots"]["check_allergies"]["mappings"]
    by_intent = {m["intent"]: m["value"] for m in mappings}
    assert by_intent == {"affirm": "yes", "deny": "no", "not_sure": "not_sure", "prefer_not_to_say": "prefer_not_to_say"}
    assert all(m["conditions"] == [{"active_loop": "checklist_form", "requested_slot": "check_allergies"}]
               for m in mappings)


# --- the result ----------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_result_lists_yes_and_not_sure_with_why_and_sources_and_keeps_the_record(runtime: Runtime, domain: dict) -> None:
    decision = runtime.kb.decision
    answers = {i: "no" for i in CHECKLIST_IDS}
    answers.update(blood_thinners="yes", allergies="not_sure", age="prefer_not_to_say")
    messages, events = await run(ActionChecklistResult(runtime), tracker(consented(**answers)), domain)
    assert events == []
    main = messages[0]
    text = main["text"]
    for item_id in ("blood_thinners", "allergies"):
        item = decision.item(item_id)
        assert item.title in text and item.why in text
    for item_id in ("pregnancy", "diabetes", "shingles"):
        assert decision.item(item_id).title not in text
    assert "under 18" in text  # prefer not to say: a general line naming it
    for question in decision.general_questions():
        assert question.text in text
    cited = {s["id"] for s in main["custom"]["sources"]}
    assert set(decision.item("blood_thinners").sources) <= cited
    assert all(s["id"] in runtime.kb.sources and s["title"] for s in main["custom"]["sources"])
    record = main["custom"]["record"]
    assert {k: v for k, v in record.items() if k.startswith("check_")} == {f"check_{i}": a for i, a in answers.items()}
    assert all(v is None for k, v in record.items() if not k.startswith("check_"))  # no details given
    assert not VERDICT.search(all_text(messages)), all_text(messages)
    payloads = [b["payload"] for b in messages[-1]["buttons"]]
    assert payloads == ["/change_answer", "/describe_hair_loss", "/get_summary", "/request_callback"]


@pytest.mark.asyncio
async def test_all_no_still_gives_general_points_and_no_verdict(runtime: Runtime, domain: dict) -> None:
    messages, _ = await run(ActionChecklistResult(runtime),
                            tracker(consented(**{i: "no" for i in CHECKLIST_IDS})), domain)
    text = all_text(messages)
    assert "You did not say yes or not sure" in text
    assert runtime.kb.decision.general_questions()[0].text in text
    assert not VERDICT.search(text), text


@pytest.mark.asyncio
async def test_without_consent_the_list_is_tailored_and_no_answer_is_kept(runtime: Runtime, domain: dict) -> None:
    decision = runtime.kb.decision
    answers = {i: "no" for i in CHECKLIST_IDS}
    answers.update(blood_thinners="yes", allergies="not_sure")
    slots = {"checklist_consent": False, "hair_pattern": "top",
             **{f"check_{k}": v for k, v in answers.items()}}
    messages, _ = await run(ActionChecklistResult(runtime), tracker(slots), domain)
    main = messages[0]
    # The same tailored list as with consent: only the yes and not sure points.
    assert "Taking blood thinners (you said yes)" in main["text"]
    assert "Allergies (you were not sure)" in main["text"]
    assert decision.item("pregnancy").title not in main["text"]
    assert "I did not keep your answers for the clinic" in main["text"]
    assert "I kept your answers" not in main["text"]
    # Only deletions, for every key the shared consent covers: nothing is kept for staff.
    record = main["custom"]["record"]
    assert {f"check_{i}" for i in CHECKLIST_IDS} | {"hair_pattern", "treatments_tried"} <= set(record)
    assert all(v is None for v in record.values())
    assert "/change_answer" in [b["payload"] for b in messages[-1]["buttons"]]
    assert not VERDICT.search(all_text(messages))


@pytest.mark.asyncio
async def test_without_consent_in_a_kept_chat_the_result_says_the_chat_holds_them(runtime: Runtime, domain: dict) -> None:
    slots = {"checklist_consent": False, "transcript_consent": "yes", "check_pregnancy": "yes"}
    messages, _ = await run(ActionChecklistResult(runtime), tracker(slots), domain)
    assert "This chat itself is kept, as you agreed at the start." in messages[0]["text"]
    assert all(v is None for v in messages[0]["custom"]["record"].values())


@pytest.mark.asyncio
async def test_answers_given_without_consent_are_never_sent(runtime: Runtime, domain: dict) -> None:
    slots = {"checklist_consent": None, "check_pregnancy": "yes"}
    messages, _ = await run(ActionChecklistResult(runtime), tracker(slots), domain)
    assert all(v is None for v in messages[0]["custom"]["record"].values())


# --- stop, start again, change ------------------------------------------------------------

@pytest.mark.asyncio
async def test_stop_leaves_the_form_says_what_was_kept_and_offers_the_points(runtime: Runtime, domain: dict) -> None:
    slots = consented(pregnancy="no", blood_thinners="yes")
    messages, events = await run(ActionChecklistStop(runtime), tracker(slots, "stop_form", "checklist_form"), domain)
    assert {"event": "active_loop", "timestamp": None, "name": None} in events
    assert slot_events(events)["paused_form"] == "checklist_form"
    assert "2 of 11" in messages[0]["text"]
    assert messages[0]["custom"]["record"]["check_blood_thinners"] == "yes"
    assert messages[1]["response"] == "utter_checklist_stop_offer"
    offer = [b["payload"] for b in domain["responses"]["utter_checklist_stop_offer"][0]["buttons"]]
    assert offer == ["/affirm", "/continue_form", "/deny"]


@pytest.mark.asyncio
async def test_stop_without_consent_keeps_nothing(runtime: Runtime, domain: dict) -> None:
    messages, _ = await run(ActionChecklistStop(runtime), tracker({}, "stop_form", "checklist_form"), domain)
    assert not messages[0]["custom"]
    assert "not kept any answers" in messages[0]["text"]
    slots = {"checklist_consent": False, "check_pregnancy": "yes"}
    messages, events = await run(ActionChecklistStop(runtime), tracker(slots, "stop_form", "checklist_form"), domain)
    assert not messages[0]["custom"]  # no record block at all
    assert "I have not kept your answers for the clinic. They are only in this chat." in messages[0]["text"]
    assert slot_events(events)["paused_form"] == "checklist_form"


@pytest.mark.asyncio
async def test_start_again_after_a_finished_checklist_clears_it_but_a_stopped_one_carries_on(runtime: Runtime, domain: dict) -> None:
    done = consented(**{i: "no" for i in CHECKLIST_IDS})
    _, events = await run(ActionChecklistStart(runtime), tracker(done, "start_checklist"), domain)
    cleared = slot_events(events)
    assert cleared["checklist_consent"] is None and cleared["check_age"] is None
    _, events = await run(ActionChecklistStart(runtime), tracker({"checklist_consent": False}, "start_checklist"), domain)
    assert slot_events(events)["checklist_consent"] is None
    # Consent given for the questions for the clinician, checklist not begun: asked again,
    # so the checklist's own explanation is shown.
    _, events = await run(ActionChecklistStart(runtime), tracker({"checklist_consent": True, "hair_pattern": "top"},
                                                                 "start_checklist"), domain)
    assert slot_events(events)["checklist_consent"] is None
    # Declined, stopped midway: carries on without asking again.
    declined = {"checklist_consent": False, "check_pregnancy": "no", "paused_form": "checklist_form"}
    _, events = await run(ActionChecklistStart(runtime), tracker(declined, "start_checklist"), domain)
    assert "checklist_consent" not in slot_events(events) and "check_pregnancy" not in slot_events(events)
    partial = {**consented(pregnancy="no"), "paused_form": "checklist_form"}
    _, events = await run(ActionChecklistStart(runtime), tracker(partial, "start_checklist"), domain)
    assert "check_pregnancy" not in slot_events(events) and "checklist_consent" not in slot_events(events)
    assert slot_events(events)["paused_form"] is None


@pytest.mark.asyncio
async def test_change_offers_each_answered_item_as_a_choice(runtime: Runtime, domain: dict) -> None:
    slots = consented(pregnancy="no", blood_thinners="not_sure")
    messages, events = await run(ActionChecklistChange(runtime), tracker(slots, "change_answer", "checklist_form"), domain)
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert payloads == ['/choose{"choice":"pregnancy"}', '/choose{"choice":"blood_thinners"}']
    assert messages[0]["buttons"][1]["title"].endswith("Not sure")
    assert {"event": "active_loop", "timestamp": None, "name": None} in events
    assert slot_events(events)["checklist_change"] is True
    assert slot_events(events)["paused_form"] == "checklist_form"
    # After the form ended: the same choice, the form is not touched.
    _, events = await run(ActionChecklistChange(runtime), tracker(slots, "change_answer"), domain)
    assert all(e["event"] != "active_loop" for e in events)


@pytest.mark.asyncio
async def test_change_works_without_consent_too(runtime: Runtime, domain: dict) -> None:
    slots = {"checklist_consent": False, "check_pregnancy": "no"}
    messages, events = await run(ActionChecklistChange(runtime), tracker(slots, "change_answer"), domain)
    assert [b["payload"] for b in messages[0]["buttons"]] == ['/choose{"choice":"pregnancy"}']
    assert slot_events(events)["checklist_change"] is True


@pytest.mark.asyncio
async def test_change_with_nothing_answered_offers_the_checklist(runtime: Runtime, domain: dict) -> None:
    messages, events = await run(ActionChecklistChange(runtime), tracker({"checklist_consent": False}, "change_answer"), domain)
    assert messages[0]["buttons"][0]["payload"] == "/start_checklist"
    assert slot_events(events)["checklist_change"] is False


@pytest.mark.asyncio
async def test_the_chosen_item_is_cleared_so_the_form_asks_it_again(runtime: Runtime, domain: dict) -> None:
    slots = {**consented(pregnancy="no", blood_thinners="no"), "checklist_change": True}
    entities = [{"entity": "choice", "value": "pregnancy"}]
    _, events = await run(ActionChecklistChangeItem(runtime), tracker(slots, "choose", entities=entities), domain)
    assert slot_events(events) == {"checklist_change": False, "paused_form": None, "check_pregnancy": None}
    _, events = await run(ActionChecklistChangeItem(runtime),
                          tracker(slots, "choose", entities=[{"entity": "choice", "value": "cost"}]), domain)
    assert "check_pregnancy" not in slot_events(events) and "check_cost" not in slot_events(events)
