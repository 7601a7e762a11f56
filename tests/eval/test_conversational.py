"""The realistic-conversation evaluation (eval/conversational.py): what counts as right."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from eval.conversational import ROOT, check, language_patterns, load_cases, summarise

LANGUAGES = {"fr": [re.compile(r"Pour l'instant .*? en anglais", re.DOTALL)]}


def answer(topic: str, text: str = "An answer.", **extra) -> dict:
    return {"role": "assistant", "text": text, "topic": topic, "sources": [{"id": "s", "title": "S"}], **extra}


def case(cls: str = "compound", **expect) -> dict:
    return {"id": "x-1", "class": cls, "turns": ["hello"], "expect": expect}


def test_every_topic_must_be_answered_with_a_source_in_the_order_asked() -> None:
    assert check(case(topics=["procedure", "cost"]), [answer("procedure"), answer("cost")], None, LANGUAGES).right
    swapped = check(case(topics=["procedure", "cost"]), [answer("cost"), answer("procedure")], None, LANGUAGES)
    assert not swapped.right and "out of order" in swapped.problems[0]
    unsourced = {"role": "assistant", "text": "x", "topic": "cost", "sources": []}
    assert not check(case(topics=["procedure", "cost"]), [answer("procedure"), unsourced], None, LANGUAGES).right


def test_a_red_flag_must_be_caught_at_its_level_or_a_more_urgent_one() -> None:
    expected = case("buried_red_flag", red_flag="same_day")
    assert check(expected, [{"text": "Call", "red_flag": "emergency"}], None, LANGUAGES).right
    assert not check(case("buried_red_flag", red_flag="emergency"),
                     [{"text": "Book", "red_flag": "prompt"}], None, LANGUAGES).right
    missed = check(expected, [answer("results")], None, LANGUAGES)
    assert missed.problems == ["missed red flag same_day"]


def test_any_red_flag_on_a_harmless_message_is_a_false_alarm() -> None:
    outcome = check(case("negative", red_flag="none", topics=["side_effects"]),
                    [{"text": "Call 999", "red_flag": "emergency"}], None, LANGUAGES)
    assert not outcome.right and "false alarm emergency" in outcome.problems


def test_a_near_topic_request_must_be_declined_with_its_kind_and_no_knowledge_answer() -> None:
    expected = case("near_topic", decline="other_use")
    assert check(expected, [{"text": "I only cover"}], {"intent": "ask_other_use"}, LANGUAGES).right
    assert not check(expected, [answer("what_is")], {"intent": "ask_other_use"}, LANGUAGES).right
    assert not check(expected, [{"text": "Sorry"}], {"intent": "out_of_scope"}, LANGUAGES).right


def test_a_reply_counts_as_in_a_language_when_it_is_that_languages_response() -> None:
    expected = case("non_english", language="fr")
    assert check(expected, [{"text": "Pour l'instant je réponds seulement en anglais."}], None, LANGUAGES).right
    assert not check(expected, [{"text": "Sorry, I can't help with that."}], None, LANGUAGES).right


def test_mentions_are_required_words_of_the_reply() -> None:
    expected = case("fact", topics=["evidence"], mentions=["dutasteride"])
    assert check(expected, [answer("evidence", "The Dutasteride trial had 14 people.")], None, LANGUAGES).right
    assert not check(expected, [answer("evidence", "A trial.")], None, LANGUAGES).right


def test_the_summary_counts_classes_catches_and_false_alarms() -> None:
    outcomes = [
        check(case("negative", red_flag="none"), [{"text": "x", "red_flag": "prompt"}], None, LANGUAGES),
        check(case("buried_red_flag", red_flag="crisis"), [{"text": "x", "red_flag": "crisis"}], None, LANGUAGES),
    ]
    report = summarise(outcomes)
    assert report["per_class"] == {"buried_red_flag": {"right": 1, "total": 1}, "negative": {"right": 0, "total": 1}}
    assert report["red_flags"] == {"crisis": {"caught": 1, "total": 1}}
    assert report["negatives_false_alarms"] == {"alarms": 1, "total": 1}


def test_a_malformed_set_is_refused_naming_the_case(tmp_path: Path) -> None:
    bad = tmp_path / "set.yml"
    bad.write_text("cases:\n  - id: a\n    class: chat\n    turns: [hi]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="case a: unknown class"):
        load_cases(bad)
    bad.write_text("cases:\n  - id: a\n    class: long\n    turns: []\n", encoding="utf-8")
    with pytest.raises(ValueError, match="case a: `turns`"):
        load_cases(bad)


def test_the_committed_sets_load_and_the_domain_has_a_reply_for_every_language_they_expect() -> None:
    patterns = language_patterns()
    for name in ("conversational.yml", "conversational_holdout.yml"):
        cases = load_cases(ROOT / "eval" / name)
        wanted = {c["expect"]["language"] for c in cases if (c.get("expect") or {}).get("language")}
        assert wanted <= set(patterns), (name, wanted - set(patterns))


def test_the_passing_multi_turn_and_compound_cases_become_conversation_tests(tmp_path: Path) -> None:
    from convtest import catalog
    from convtest.spec import read_file
    from eval.conversation_tests import write

    cases = [
        {"id": "mt-1", "class": "multi_turn", "turns": ["does it hurt", "and the gun one?"], "expect": {"topics": ["pain"]}},
        {"id": "mt-2", "class": "multi_turn", "turns": ["a", "b"], "expect": {"topics": ["cost"]}},
        {"id": "cp-1", "class": "compound", "turns": ["how long and how much"],
         "expect": {"topics": ["procedure", "cost"], "mentions": ["30"]}},
        {"id": "lg-1", "class": "long", "turns": ["story"], "expect": {"topics": ["cost"]}},
    ]
    counts = write(cases, missed={"mt-2"}, source="eval/x.yml", out_dir=tmp_path)
    assert counts == {"multi_turn": 1, "compound": 1}
    multi = (tmp_path / "multi_turn.yml").read_text(encoding="utf-8")
    assert "Not included (the evaluation missed them when this file was written): mt-2" in multi
    known = catalog.build()
    [test], problems = read_file(tmp_path / "multi_turn.yml", known)
    assert not problems
    assert test.name == "realistic_mt_1"
    assert [s.value for s in test.steps] == ["does it hurt", "and the gun one?"]
    [compound], problems = read_file(tmp_path / "compound.yml", known)
    assert not problems
    checks = {(a.name, str(a.value)) for a in compound.steps[-1].assertions}
    assert {("topic", "procedure"), ("topic", "cost"), ("red_flag", "none"), ("text_contains", "['30']")} <= checks
