"""The safety gate (bot/nlu/safety.py) on Rasa messages as the classifier leaves them."""

from __future__ import annotations

from typing import Any

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.safety import SUMMARY_KEY, SafetyGate


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> SafetyGate:
    storage = LocalModelStorage(tmp_path_factory.mktemp("model"))
    context = ExecutionContext(GraphSchema({}), "test")
    return SafetyGate.create({"threshold": 0.7}, storage, Resource("safety"), context)


def classified(text: str, *ranking: tuple[str, float]) -> Message:
    """A message as the classifier (and FallbackClassifier, below 0.4) leaves it."""
    ranks = [{"name": n, "confidence": c} for n, c in ranking] or [{"name": "greet", "confidence": 0.9}]
    if ranks[0]["confidence"] < 0.4:
        ranks = [{"name": "nlu_fallback", "confidence": 0.4}, *ranks]
    return Message(data={TEXT: text, INTENT: ranks[0], INTENT_RANKING_KEY: ranks, ENTITIES: []})


def run(gate: SafetyGate, message: Message) -> Message:
    [out] = gate.process([message])
    return out


def found(message: Message) -> tuple[str | None, list[str]]:
    """The level and flags the gate reports (what action_red_flag reads)."""
    summary = message.get(SUMMARY_KEY)
    return summary["level"], summary["flags"]


def test_a_rule_red_flag_overrides_a_confident_classifier(gate: SafetyGate) -> None:
    message = run(gate, classified("how much is it? also my lips are swelling up", ("ask_cost", 0.93),
                                   ("greet", 0.02)))
    assert message.get(INTENT) == {"name": "red_flag_emergency", "confidence": 1.0}
    assert message.get(INTENT_RANKING_KEY)[0]["name"] == "red_flag_emergency"
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)[1:]] == ["ask_cost", "greet"]
    assert found(message) == ("emergency", ["face_swelling"])
    assert not message.get(ENTITIES), "no entities: test stories would have to list them"
    summary = message.get(SUMMARY_KEY)
    assert summary["source"] == "rules" and summary["classifier"] == {"name": "ask_cost", "confidence": 0.93}


def test_several_flags_are_all_reported_with_the_most_severe_level(gate: SafetyGate) -> None:
    message = run(gate, classified("fever since yesterday and now i cant breathe", ("red_flag_same_day", 0.7)))
    assert message.get(INTENT)["name"] == "red_flag_emergency"
    level, flags = found(message)
    assert level == "emergency" and {"fever", "breathing"} <= set(flags)


def test_a_rule_red_flag_beats_a_low_confidence_fallback(gate: SafetyGate) -> None:
    message = run(gate, classified("i want to kms", ("goodbye", 0.2), ("greet", 0.1)))
    assert message.get(INTENT) == {"name": "red_flag_crisis", "confidence": 1.0}
    assert "nlu_fallback" in [r["name"] for r in message.get(INTENT_RANKING_KEY)]


def test_a_confident_classifier_red_flag_is_kept(gate: SafetyGate) -> None:
    message = run(gate, classified("something is really wrong with me after the session",
                                   ("red_flag_same_day", 0.8), ("ask_side_effects", 0.1)))
    assert message.get(INTENT) == {"name": "red_flag_same_day", "confidence": 0.8}
    assert found(message) == ("same_day", ["unspecified"])
    assert message.get(SUMMARY_KEY)["source"] == "nlu"


def test_a_classifier_red_flag_on_a_mere_mention_becomes_the_next_intent(gate: SafetyGate) -> None:
    message = run(gate, classified("is swelling a side effect?", ("red_flag_emergency", 0.7),
                                   ("ask_side_effects", 0.25), ("red_flag_prompt", 0.05)))
    assert message.get(INTENT)["name"] == "nlu_fallback"  # the next one is below 0.4
    message = run(gate, classified("can it cause hives?", ("red_flag_emergency", 0.5),
                                   ("red_flag_prompt", 0.03), ("ask_side_effects", 0.45)))
    assert message.get(INTENT) == {"name": "ask_side_effects", "confidence": 0.45}
    assert found(message) == (None, [])
    assert message.get(SUMMARY_KEY)["source"] == "mention"


def test_a_classifier_crisis_is_never_demoted_as_a_mention(gate: SafetyGate) -> None:
    message = run(gate, classified("can it cause hives? everything feels pointless lately",
                                   ("red_flag_crisis", 0.7), ("ask_side_effects", 0.2)))
    assert message.get(INTENT)["name"] == "red_flag_crisis"


def test_a_classifier_crisis_on_words_the_rules_read_as_a_figure_of_speech_gives_way(gate: SafetyGate) -> None:
    text = "my friend said she wanted to die when she saw her bill lol, how much is it"
    message = run(gate, classified(text, ("red_flag_crisis", 0.67), ("ask_cost", 0.2), ("greet", 0.05)))
    # What the classifier gave the crisis reading goes back to the others: 0.2 of the 0.33 left.
    assert message.get(INTENT)["name"] == "ask_cost"
    assert message.get(INTENT)["confidence"] == pytest.approx(0.2 / 0.33)
    assert message.get(SUMMARY_KEY)["source"] == "other_sense" and found(message)[0] is None
    message = run(gate, classified(text, ("red_flag_crisis", 0.67), ("ask_cost", 0.1), ("greet", 0.08)))
    assert message.get(INTENT)["name"] == "nlu_fallback"  # 0.1 of 0.33 is still below 0.4


@pytest.mark.parametrize("text, confidence", [
    ("my friend said she wanted to die when she saw her bill lol", 0.95),  # the classifier is sure
    ("i nearly died when i saw the bill, everyone would be better off without me", 0.7),  # a crisis beside it
    ("whats the point of anything anymore", 0.7),  # no figure of speech at all
])
def test_a_classifier_crisis_stands_unless_the_rules_read_its_words_in_another_sense(gate: SafetyGate, text: str,
                                                                                     confidence: float) -> None:
    message = run(gate, classified(text, ("red_flag_crisis", confidence), ("ask_cost", 0.2)))
    assert message.get(INTENT)["name"] == "red_flag_crisis"
    assert found(message)[0] == "crisis"


def test_a_weak_classifier_red_flag_is_not_trusted_alone(gate: SafetyGate) -> None:
    message = run(gate, classified("my head feels a bit odd", ("red_flag_emergency", 0.45), ("ask_pain", 0.41)))
    assert message.get(INTENT) == {"name": "ask_pain", "confidence": 0.41}
    assert message.get(SUMMARY_KEY)["source"] == "below_threshold"


@pytest.mark.parametrize("text, intent", [
    ("do i have alopecia?", "ask_diagnosis"),
    ("how many mg of minoxidil should i take", "ask_dose"),
    ("should i stop my warfarin before the session", "ask_stop_medicine"),
    ("can i buy a meso kit and do it at home", "ask_self_injection"),
])
def test_requests_to_decline_become_ask_intents(gate: SafetyGate, text: str, intent: str) -> None:
    message = run(gate, classified(text, ("ask_cost", 0.6), ("greet", 0.1)))
    assert message.get(INTENT) == {"name": intent, "confidence": 1.0}
    assert message.get(SUMMARY_KEY)["limit"] == intent[len("ask_"):]


def test_a_red_flag_wins_over_a_request_to_decline(gate: SafetyGate) -> None:
    message = run(gate, classified("should i stop my warfarin? it wont stop bleeding", ("ask_stop_medicine", 0.9)))
    assert message.get(INTENT)["name"] == "red_flag_same_day"


@pytest.mark.parametrize("text", ["whats in the injection", "how much is it", "hi there"])
def test_ordinary_messages_keep_the_classifiers_intent(gate: SafetyGate, text: str) -> None:
    message = run(gate, classified(text, ("ask_ingredients", 0.8), ("ask_cost", 0.1)))
    assert message.get(INTENT) == {"name": "ask_ingredients", "confidence": 0.8}
    assert found(message) == (None, [])
    assert message.get(SUMMARY_KEY)["source"] is None


def test_button_payloads_pass_untouched(gate: SafetyGate) -> None:
    message = classified('/choose{"choice":"cost"}', ("choose", 1.0))
    before = dict(message.data)
    assert run(gate, message).data == before


def test_the_summary_is_part_of_the_parse_output(gate: SafetyGate) -> None:
    message = run(gate, classified("my throat is closing", ("greet", 0.9)))
    output = message.as_dict(only_output_properties=True)
    assert output[SUMMARY_KEY]["level"] == "emergency"
    assert output[INTENT]["name"] == "red_flag_emergency"


def test_a_classifier_red_flag_on_negated_symptoms_becomes_the_next_intent(gate: SafetyGate) -> None:
    message = run(gate, classified("no fever or anything, just itchy", ("red_flag_same_day", 0.8),
                                   ("ask_aftercare", 0.15)))
    assert message.get(INTENT)["name"] == "nlu_fallback"
    assert message.get(SUMMARY_KEY)["source"] == "negated" and found(message) == (None, [])


def test_a_weak_classifier_refusal_gives_way_to_the_next_intent(gate: SafetyGate) -> None:
    message = run(gate, classified("can i get myself home on the bus after", ("ask_self_injection", 0.84),
                                   ("ask_aftercare", 0.12), ("ask_dose", 0.02)))
    assert message.get(INTENT)["name"] == "nlu_fallback"  # ask_aftercare is below 0.4
    assert message.get(SUMMARY_KEY)["source"] == "refusal_below_threshold"
    message = run(gate, classified("is baldness passed down in families", ("ask_diagnosis", 0.5),
                                   ("ask_hair_facts", 0.45)))
    assert message.get(INTENT) == {"name": "ask_hair_facts", "confidence": 0.45}


def test_a_confident_classifier_refusal_is_kept(gate: SafetyGate) -> None:
    message = run(gate, classified("the foam for my crown, how often", ("ask_dose", 0.95), ("ask_cost", 0.02)))
    assert message.get(INTENT) == {"name": "ask_dose", "confidence": 0.95}


# --- other languages ------------------------------------------------------------------------
def test_a_question_in_another_language_gets_the_language_intent_not_an_english_rule(gate: SafetyGate) -> None:
    message = run(gate, classified("combien coûte une séance de mésothérapie ? j'ai mal compris le prix",
                                   ("ask_cost", 0.5), ("greet", 0.1)))
    assert message.get(INTENT) == {"name": "other_language", "confidence": 1.0}
    summary = message.get(SUMMARY_KEY)
    assert summary["language"] == "fr" and summary["source"] == "language" and summary["level"] is None


def test_an_emergency_in_another_language_is_caught_by_that_languages_lexicon(gate: SafetyGate) -> None:
    message = run(gate, classified("aidez moi je n'arrive plus à respirer depuis les injections", ("greet", 0.5)))
    assert message.get(INTENT)["name"] == "red_flag_emergency"
    summary = message.get(SUMMARY_KEY)
    assert summary["language"] == "fr" and summary["source"] == "language_rules" and summary["level"] == "emergency"


def test_a_crisis_in_another_language_is_caught(gate: SafetyGate) -> None:
    message = run(gate, classified("ich will nicht mehr leben", ("out_of_scope", 0.6)))
    assert message.get(INTENT)["name"] == "red_flag_crisis"
    assert message.get(SUMMARY_KEY)["language"] == "de"


def test_the_classifier_alone_never_decides_that_a_message_is_in_another_language(gate: SafetyGate) -> None:
    message = run(gate, classified("how much is it per session", ("other_language", 0.7), ("ask_cost", 0.25)))
    assert message.get(INTENT)["name"] == "nlu_fallback"
    message = run(gate, classified("how much is it per session", ("other_language", 0.5), ("ask_cost", 0.45)))
    assert message.get(INTENT)["name"] == "ask_cost"
    assert message.get(SUMMARY_KEY)["language"] == "en"


# --- a message read in pieces ---------------------------------------------------------------
def read_in_pieces(message: Message, *pieces: tuple[str, bool, str, float], long: bool = True) -> Message:
    message.set("reading", {"long": long, "compound": False, "pieces": [
        {"text": t, "question": q, "intent_ranking": [{"name": n, "confidence": c}, {"name": "greet", "confidence": 0.01}]}
        for t, q, n, c in pieces]})
    return message


def test_a_crisis_the_classifier_finds_in_one_sentence_of_a_long_story_wins(gate: SafetyGate) -> None:
    text = "work has been awful. honestly everything feels heavy lately. anyway how long do results last"
    message = run(gate, read_in_pieces(classified(text, ("ask_results", 0.8)),
                                       ("work has been awful.", False, "chitchat", 0.6),
                                       ("honestly everything feels heavy lately.", False, "red_flag_crisis", 0.95),
                                       ("anyway how long do results last", True, "ask_results", 0.95)))
    assert message.get(INTENT)["name"] == "red_flag_crisis"
    assert message.get(SUMMARY_KEY)["source"] == "nlu_piece"


def test_an_english_emergency_inside_a_foreign_message_is_still_caught(gate: SafetyGate) -> None:
    message = run(gate, classified("my lips are swelling up fast, je ne parle pas bien anglais désolé", ("greet", 0.5)))
    assert message.get(INTENT)["name"] == "red_flag_emergency"
    assert message.get(SUMMARY_KEY)["flags"] == ["face_swelling"]


def test_a_piece_below_the_threshold_or_only_mentioning_a_symptom_does_not_alarm(gate: SafetyGate) -> None:
    text = "my friend had it done. can it cause swelling? and how much is it"
    message = run(gate, read_in_pieces(classified(text, ("ask_cost", 0.8)),
                                       ("my friend had it done.", False, "red_flag_emergency", 0.85),
                                       ("can it cause swelling?", True, "red_flag_emergency", 0.9),
                                       ("and how much is it", True, "ask_cost", 0.95)))
    assert message.get(INTENT)["name"] == "ask_cost"
    assert message.get(SUMMARY_KEY)["level"] is None


def test_a_long_storys_refusal_words_outside_its_question_do_not_decline_it(gate: SafetyGate) -> None:
    text = ("my gp thinks i have alopecia and i should stop my finasteride but who knows, its been a long year "
            "and i am tired of it all at this point. anyway how much does a session cost")
    message = run(gate, read_in_pieces(classified(text, ("ask_cost", 0.7)),
                                       ("my gp thinks i have alopecia and i should stop my finasteride but who "
                                        "knows, its been a long year and i am tired of it all at this point.",
                                        False, "ask_candidacy", 0.5),
                                       ("anyway how much does a session cost", True, "ask_cost", 0.95)))
    assert message.get(INTENT)["name"] == "ask_cost"
