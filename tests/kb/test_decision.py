"""The decision support knowledge (knowledge/decision/): validation rules and the real files."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from bot import paths
from bot.kb.build import validate
from bot.kb.decision import (
    ALL_DIMENSIONS,
    CHECKLIST_IDS,
    OPTION_DIMENSIONS,
    OPTION_IDS,
    VALUE_DIMENSIONS,
    VALUE_ONLY_DIMENSIONS,
    DecisionAid,
)
from bot.kb.loader import KnowledgeError
from bot.kb.model import KnowledgeBase

Maker = Callable[..., tuple[Path, Path, Path]]
DATES = {"reviewed": "2026-11-22", "review_due": "2027-11-22"}


def _cell(text: str | None = "The guide says so.", sources: list[str] | None = None) -> dict[str, Any]:
    return {"text": text, "sources": (["guide"] if text else []) if sources is None else sources}


def minimal_decision() -> dict[str, dict[str, Any]]:
    """A valid decision folder for the minimal knowledge of conftest.py."""
    return {
        "options.yml": {**DATES, "not_covered": {"text": "Other options exist; a GP can explain them."}, "options": [
            {"id": oid, "title": oid.title(), "entry": "cost-session" if oid == "mesotherapy" else None,
             "cells": {dim: _cell() for dim in ALL_DIMENSIONS}}
            for oid in OPTION_IDS
        ]},
        "values.yml": {**DATES, "values": [
            {"id": vid, "title": vid.replace("_", " ").title(), "dimension": dim}
            for vid, dim in VALUE_DIMENSIONS.items()
        ]},
        "checklist.yml": {**DATES, "checklist": [
            {"id": iid, "title": iid, "entry": "pain-level", "why": "The clinic lists it.",
             "ask": "Does this matter for me?", "sources": ["clinic"]}
            for iid in CHECKLIST_IDS
        ]},
        "costs.yml": {
            **DATES,
            "per_session": [{"source": "guide", "currency": "USD", "low": 100, "high": 200, "note": None}],
            "first_course_sessions": [{"source": "guide", "low": 5, "high": 15, "note": "weekly"}],
            "maintenance_sessions_per_year": [{"source": "clinic", "low": 12, "high": 12,
                                               "note": "monthly; 12 a year is our sum"}],
        },
    }


@pytest.fixture
def make_decision(make_knowledge: Maker) -> Callable[..., tuple[Path, Path, Path]]:
    """The minimal knowledge plus a decision folder; ``mutate`` edits the decision files first."""

    def _make(mutate: Callable[[dict[str, Any]], None] | None = None) -> tuple[Path, Path, Path]:
        knowledge, clinic, rules = make_knowledge()
        files = minimal_decision()
        if mutate:
            mutate(files)
        folder = knowledge / "decision"
        folder.mkdir()
        for name, content in files.items():
            if content is None:
                continue
            text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
            (folder / name).write_text(text)
        return knowledge, clinic, rules

    return _make


def _problems(make: Callable[..., tuple[Path, Path, Path]], mutate: Callable[[dict[str, Any]], None]) -> list[str]:
    with pytest.raises(KnowledgeError) as info:
        validate(*make(mutate))
    return info.value.problems


def _option(files: dict[str, Any], oid: str = "minoxidil") -> dict[str, Any]:
    return next(o for o in files["options.yml"]["options"] if o["id"] == oid)


def _has(problems: list[str], *parts: str) -> bool:
    return any(all(part in p for part in parts) for p in problems)


# --- the minimal decision folder ----------------------------------------------------------

def test_the_api_names() -> None:
    assert OPTION_DIMENSIONS == ("involves", "benefits", "harms", "time_to_effect", "cost", "evidence")
    assert VALUE_ONLY_DIMENSIONS == ("needles_pain", "time_commitment")
    assert ALL_DIMENSIONS == OPTION_DIMENSIONS + VALUE_ONLY_DIMENSIONS


def test_the_minimal_decision_folder_is_valid(make_decision: Maker) -> None:
    decision = validate(*make_decision()).decision
    assert decision is not None
    assert [o.id for o in decision.options] == list(OPTION_IDS)
    assert decision.option("mesotherapy").entry == "cost-session"
    assert decision.option("prp").cells["harms"].sources == ("guide",)
    assert decision.value("speed").dimension == "time_to_effect"
    assert decision.item("age").entry == "pain-level"
    assert decision.costs.per_session[0].high == 200.0
    assert (decision.reviewed, decision.review_due) == ("2026-11-22", "2027-11-22")
    for lookup in (decision.option, decision.value, decision.item):
        with pytest.raises(KeyError):
            lookup("nope")


def test_knowledge_without_a_decision_folder_has_no_decision(make_knowledge: Maker) -> None:
    assert validate(*make_knowledge()).decision is None


def test_a_null_cell_without_sources_is_valid(make_decision: Maker) -> None:
    decision = validate(*make_decision(lambda f: _option(f)["cells"].update(cost=_cell(None)))).decision
    assert decision.option("minoxidil").cells["cost"].text is None
    assert decision.option("minoxidil").cells["cost"].sources == ()


def test_the_oldest_review_dates_win(make_decision: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        f["values.yml"].update(reviewed="2026-01-01", review_due="2026-12-31")

    decision = validate(*make_decision(mutate)).decision
    assert (decision.reviewed, decision.review_due) == ("2026-01-01", "2026-12-31")


# --- each rule rejects a bad file, naming the file and the item ---------------------------

def test_unknown_source_id_in_a_cell_is_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: _option(f)["cells"].update(harms=_cell("x", ["ghost"])))
    assert _has(problems, "options.yml", "option 'minoxidil'", "cell 'harms'", "unknown source id 'ghost'"), problems


def test_unknown_source_id_in_the_checklist_and_costs_is_rejected(make_decision: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        f["checklist.yml"]["checklist"][2]["sources"] = ["ghost"]
        f["costs.yml"]["per_session"][0]["source"] = "nobody"

    problems = _problems(make_decision, mutate)
    assert _has(problems, "checklist.yml", "item 'bleeding'", "unknown source id 'ghost'"), problems
    assert _has(problems, "costs.yml", "per_session #1", "unknown source id 'nobody'"), problems


def test_unknown_entry_id_is_rejected(make_decision: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        _option(f, "prp")["entry"] = "alternatives-nowhere"
        f["checklist.yml"]["checklist"][0]["entry"] = "candidacy-nowhere"

    problems = _problems(make_decision, mutate)
    assert _has(problems, "options.yml", "option 'prp'", "unknown entry id 'alternatives-nowhere'"), problems
    assert _has(problems, "checklist.yml", "item 'pregnancy'", "unknown entry id 'candidacy-nowhere'"), problems


def test_checklist_item_needs_an_entry(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: f["checklist.yml"]["checklist"][3].update(entry=None))
    assert _has(problems, "checklist.yml", "item 'diabetes'", "unknown entry id"), problems


def test_missing_dimension_is_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: _option(f)["cells"].pop("needles_pain"))
    assert _has(problems, "options.yml", "option 'minoxidil'", "missing dimension(s): needles_pain"), problems


def test_extra_dimension_is_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: _option(f)["cells"].update(taste=_cell()))
    assert _has(problems, "options.yml", "option 'minoxidil'", "unknown dimension(s): taste"), problems


def test_null_text_with_sources_is_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: _option(f)["cells"].update(cost=_cell(None, ["guide"])))
    assert _has(problems, "options.yml", "option 'minoxidil'", "cell 'cost'", "null but 'sources'"), problems


def test_text_without_sources_is_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: _option(f)["cells"].update(evidence=_cell("Strong.", [])))
    assert _has(problems, "options.yml", "option 'minoxidil'", "cell 'evidence'", "no source"), problems


def test_cell_without_text_key_is_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: _option(f)["cells"].update(cost={"sources": []}))
    assert _has(problems, "option 'minoxidil'", "cell 'cost'", "needs 'text'"), problems


def test_low_above_high_is_rejected(make_decision: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        f["costs.yml"]["per_session"][0].update(low=300, high=200)
        f["costs.yml"]["maintenance_sessions_per_year"][0].update(low=13)

    problems = _problems(make_decision, mutate)
    assert _has(problems, "costs.yml", "per_session #1 (guide)", "'low' (300) is more than 'high' (200)"), problems
    assert _has(problems, "costs.yml", "maintenance_sessions_per_year #1 (clinic)", "more than 'high'"), problems


def test_non_numeric_and_negative_figures_are_rejected(make_decision: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        f["costs.yml"]["per_session"][0].update(high="several hundred")
        f["costs.yml"]["first_course_sessions"][0].update(low=-1)

    problems = _problems(make_decision, mutate)
    assert _has(problems, "per_session #1", "must be numbers"), problems
    assert _has(problems, "first_course_sessions #1", "must be numbers"), problems


def test_bad_currency_is_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: f["costs.yml"]["per_session"][0].update(currency="dollars"))
    assert _has(problems, "costs.yml", "per_session #1", "currency"), problems


def test_empty_cost_list_is_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: f["costs.yml"].update(first_course_sessions=[]))
    assert _has(problems, "costs.yml", "non-empty 'first_course_sessions'"), problems


def test_missing_and_unknown_option_ids_are_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: _option(f, "nothing").update(id="homeopathy"))
    assert _has(problems, "options.yml", "missing option(s): nothing"), problems
    assert _has(problems, "options.yml", "unknown option id(s): homeopathy"), problems


def test_duplicate_option_is_rejected(make_decision: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        f["options.yml"]["options"].append(copy.deepcopy(_option(f, "prp")))

    problems = _problems(make_decision, mutate)
    assert _has(problems, "options.yml", "duplicate option id 'prp'"), problems


def test_checklist_ids_must_be_complete(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: f["checklist.yml"]["checklist"].pop())
    assert _has(problems, "checklist.yml", "missing checklist item(s): age"), problems


def test_checklist_ids_must_be_in_order(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: f["checklist.yml"]["checklist"].reverse())
    assert _has(problems, "checklist.yml", "must be in this order"), problems


def test_checklist_item_needs_why_and_ask(make_decision: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        f["checklist.yml"]["checklist"][4].pop("why")
        f["checklist.yml"]["checklist"][4]["ask"] = "  "

    problems = _problems(make_decision, mutate)
    assert _has(problems, "checklist.yml", "item 'organ_disease'", "missing 'why'"), problems
    assert _has(problems, "checklist.yml", "item 'organ_disease'", "missing 'ask'"), problems


def test_value_with_the_wrong_dimension_is_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: f["values.yml"]["values"][4].update(dimension="cost"))
    assert _has(problems, "values.yml", "value 'speed'", "must be 'time_to_effect'"), problems


def test_unknown_value_id_is_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: f["values.yml"]["values"][0].update(id="price"))
    assert _has(problems, "values.yml", "missing value(s): cost"), problems
    assert _has(problems, "values.yml", "unknown value id(s): price"), problems


@pytest.mark.parametrize("name", ["options.yml", "values.yml", "checklist.yml", "costs.yml"])
def test_bad_review_date_is_rejected(make_decision: Maker, name: str) -> None:
    problems = _problems(make_decision, lambda f: f[name].update(reviewed="last week"))
    assert _has(problems, name, "review date"), problems


@pytest.mark.parametrize("name", ["options.yml", "costs.yml"])
def test_missing_review_due_is_rejected(make_decision: Maker, name: str) -> None:
    problems = _problems(make_decision, lambda f: f[name].pop("review_due"))
    assert _has(problems, name, "next review date"), problems


@pytest.mark.parametrize("name", ["values.yml", "checklist.yml"])
def test_review_due_must_follow_review(make_decision: Maker, name: str) -> None:
    problems = _problems(make_decision, lambda f: f[name].update(review_due="2020-01-01"))
    assert _has(problems, name, "must come after 'reviewed'"), problems


def test_missing_file_and_broken_yaml_name_the_file(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: f.update({"values.yml": None, "costs.yml": "low: [unclosed"}))
    assert _has(problems, "values.yml", "file not found"), problems
    assert _has(problems, "costs.yml", "not valid YAML"), problems


def test_unknown_field_is_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: _option(f).update(verdict="go for it"))
    assert _has(problems, "options.yml", "option 'minoxidil'", "unknown field(s) verdict"), problems


# --- the shipped decision knowledge -------------------------------------------------------

@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return validate(paths.knowledge_dir(), paths.clinic_file(), paths.rules_dir())


@pytest.fixture(scope="module")
def decision(kb: KnowledgeBase) -> DecisionAid:
    assert kb.decision is not None, "knowledge/decision/ should load"
    return kb.decision


def _texts(decision: DecisionAid) -> list[tuple[str, str]]:
    texts = [(f"{o.id}.{d}", c.text) for o in decision.options for d, c in o.cells.items() if c.text]
    texts += [(f"{i.id}.{k}", getattr(i, k)) for i in decision.checklist for k in ("why", "ask")]
    ranges = decision.costs.per_session + decision.costs.first_course_sessions + decision.costs.maintenance_sessions_per_year
    texts += [(f"costs.{r.source}", r.note) for r in ranges if r.note]
    texts += [("not_covered", decision.not_covered)]
    return texts


def test_real_files_have_every_option_with_every_dimension(decision: DecisionAid) -> None:
    assert [o.id for o in decision.options] == list(OPTION_IDS)
    for option in decision.options:
        assert tuple(option.cells) == ALL_DIMENSIONS, option.id
        assert option.cells["involves"].text, f"{option.id}: what going through it is like"


def test_real_benefits_and_harms_have_equal_detail(decision: DecisionAid) -> None:
    for option in decision.options:
        benefits, harms = option.cells["benefits"].text, option.cells["harms"].text
        assert (benefits is None) == (harms is None), f"{option.id}: benefits and harms must both be known or both unknown"
        if benefits and harms:
            b, h = len(benefits.split()), len(harms.split())
            assert min(b, h) >= 0.6 * max(b, h), f"{option.id}: benefits {b} words, harms {h} words"


def test_real_claims_only_from_the_seller_are_marked(decision: DecisionAid, kb: KnowledgeBase) -> None:
    sellers = {s.id for s in kb.sources.values() if s.sells_treatment}
    for option in decision.options:
        for dim, cell in option.cells.items():
            if cell.text and set(cell.sources) <= sellers:
                assert re.search(r"clinic", cell.text, re.I), f"{option.id}.{dim} cites only a seller"


def test_real_checklist_items_point_at_existing_entries(decision: DecisionAid, kb: KnowledgeBase) -> None:
    assert [i.id for i in decision.checklist] == list(CHECKLIST_IDS)
    for item in decision.checklist:
        assert item.entry in kb.entries, item.id
        assert item.sources, item.id


def test_real_values_cover_the_six_values(decision: DecisionAid) -> None:
    assert {v.id: v.dimension for v in decision.values} == VALUE_DIMENSIONS


def test_real_costs_are_published_numbers(decision: DecisionAid) -> None:
    assert decision.costs.per_session and decision.costs.first_course_sessions
    assert decision.costs.maintenance_sessions_per_year
    for r in decision.costs.maintenance_sessions_per_year:
        assert r.note and "our sum" in r.note, f"{r.source}: say the per-year figure is converted"


def test_real_texts_give_no_dose_and_no_verdict(decision: DecisionAid) -> None:
    dose = re.compile(r"\d\s*(mg|ml|%|percent)\b|\b(mg|ml)\b", re.I)
    verdict = re.compile(r"\byou (can|cannot|can't|should not|shouldn't) have\b|\byou are (not )?(suitable|eligible)\b", re.I)
    for where, text in _texts(decision):
        assert not dose.search(text), f"{where}: no dose or strength"
        assert not verdict.search(text), f"{where}: no verdict about the person"


def test_real_texts_are_plain_language(decision: DecisionAid) -> None:
    textstat = pytest.importorskip("textstat")
    hard = [(where, textstat.flesch_kincaid_grade(text)) for where, text in _texts(decision)
            if len(text.split()) >= 8]
    hard = [(w, g) for w, g in hard if g > 8.0]
    assert not hard, hard


def test_decision_round_trips_through_kb_json(kb: KnowledgeBase, decision: DecisionAid) -> None:
    again = KnowledgeBase.from_dict(json.loads(json.dumps(kb.to_dict(), ensure_ascii=False)))
    assert again.decision == decision
    assert again.decision.option("nothing").cells["evidence"].sources == decision.option("nothing").cells["evidence"].sources
    assert isinstance(again.decision.checklist[0].sources, tuple)


def test_a_kb_json_without_decision_still_loads(kb: KnowledgeBase) -> None:
    data = kb.to_dict()
    data.pop("decision")
    assert KnowledgeBase.from_dict(data).decision is None


# --- questions to take to the consultation (checklist.yml 'questions') ---------------------

def _with_questions(*questions: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(f: dict[str, Any]) -> None:
        f["checklist.yml"]["questions"] = [dict(q) for q in questions]
    return mutate


def test_questions_load_as_general_and_per_value(make_decision: Maker) -> None:
    decision = validate(*make_decision(_with_questions(
        {"id": "mix", "text": "What is in the mix?", "sources": ["guide"]},
        {"id": "money", "value": "cost", "text": "What is the total?", "sources": ["clinic"]},
    ))).decision
    assert [q.id for q in decision.general_questions()] == ["mix"]
    assert [q.id for q in decision.value_questions("cost")] == ["money"]
    assert decision.value_questions("speed") == ()
    assert decision.general_questions()[0].sources == ("guide",)


def test_questions_are_optional(make_decision: Maker) -> None:
    assert validate(*make_decision()).decision.questions == ()


def test_bad_questions_are_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, _with_questions(
        {"id": "a", "value": "price", "text": "What is the total?", "sources": ["guide"]},
        {"id": "b", "text": " ", "sources": ["guide"]},
        {"id": "c", "text": "Who does it?", "sources": []},
        {"id": "d", "text": "Who does it?", "sources": ["ghost"], "verdict": "yes"},
    ))
    assert _has(problems, "checklist.yml", "question 'a'", "'value' must be one of"), problems
    assert _has(problems, "checklist.yml", "question 'b'", "missing 'text'"), problems
    assert _has(problems, "checklist.yml", "question 'c'", "no source"), problems
    assert _has(problems, "checklist.yml", "question 'd'", "unknown source id 'ghost'"), problems
    assert _has(problems, "checklist.yml", "question 'd'", "unknown field(s) verdict"), problems


def test_real_questions_cover_every_value_and_everyone(decision: DecisionAid) -> None:
    assert len(decision.general_questions()) >= 3
    for value in decision.values:
        assert decision.value_questions(value.id), f"no question for value '{value.id}'"
    dose = re.compile(r"\d\s*(mg|ml|%|percent)\b|\b(mg|ml)\b", re.I)
    textstat = pytest.importorskip("textstat")
    for question in decision.questions:
        assert question.text.endswith("?"), question.id
        assert not dose.search(question.text), question.id
        assert textstat.flesch_kincaid_grade(question.text) <= 8.0, question.id


def test_questions_round_trip_through_kb_json(kb: KnowledgeBase, decision: DecisionAid) -> None:
    again = KnowledgeBase.from_dict(json.loads(json.dumps(kb.to_dict(), ensure_ascii=False)))
    assert again.decision.questions == decision.questions
    assert isinstance(again.decision.questions[0].sources, tuple)


# --- the words of each value and the short names of the sources (cost estimate) -------------

def _value(files: dict[str, Any], vid: str) -> dict[str, Any]:
    return next(v for v in files["values.yml"]["values"] if v["id"] == vid)


def test_value_words_are_loaded_lower_case(make_decision: Maker) -> None:
    decision = validate(*make_decision(lambda f: _value(f, "cost").update(words=["Money", "Too  Pricey"]))).decision
    assert decision.value("cost").words == ("money", "too pricey")
    assert decision.value("speed").words == ()


def test_bad_or_shared_value_words_are_rejected(make_decision: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        _value(f, "cost").update(words=["money", "risk"])
        _value(f, "side_effects").update(words=["risk"])
        _value(f, "speed").update(words="fast")

    problems = _problems(make_decision, mutate)
    assert _has(problems, "values.yml", "value 'side_effects'", "word 'risk'", "value 'cost'"), problems
    assert _has(problems, "values.yml", "value 'speed'", "'words' must be a list"), problems


def test_source_names_are_optional(make_decision: Maker) -> None:
    assert validate(*make_decision()).decision.costs.source_names == {}


def test_source_names_are_loaded(make_decision: Maker) -> None:
    named = validate(*make_decision(lambda f: f["costs.yml"].update(source_names={"guide": "the guide"})))
    assert named.decision.costs.source_names == {"guide": "the guide"}


def test_bad_source_names_are_rejected(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: f["costs.yml"].update(source_names={"ghost": "x", "guide": " "}))
    assert _has(problems, "costs.yml", "source_names", "unknown source id 'ghost'"), problems
    assert _has(problems, "costs.yml", "source_names", "name of 'guide' must be words"), problems


def test_real_values_have_words_and_every_cost_source_a_name(decision: DecisionAid) -> None:
    for value in decision.values:
        assert value.words, value.id
    costs = decision.costs
    used = {r.source for r in (*costs.per_session, *costs.first_course_sessions, *costs.maintenance_sessions_per_year)}
    assert used <= set(costs.source_names)


def test_words_and_names_round_trip_through_kb_json(kb: KnowledgeBase, decision: DecisionAid) -> None:
    again = KnowledgeBase.from_dict(json.loads(json.dumps(kb.to_dict(), ensure_ascii=False))).decision
    assert again.values == decision.values and isinstance(again.values[0].words, tuple)
    assert again.costs.source_names == decision.costs.source_names


# --- the options none of the sources cover (options.yml 'not_covered') ---------------------

def test_not_covered_is_loaded(make_decision: Maker) -> None:
    decision = validate(*make_decision()).decision
    assert decision.not_covered == "Other options exist; a GP can explain them."


@pytest.mark.parametrize("value", [None, "", {"text": "  "}, {"text": None}, "a bare string"])
def test_not_covered_needs_a_text(make_decision: Maker, value: Any) -> None:
    def mutate(f: dict[str, Any]) -> None:
        if value is None:
            f["options.yml"].pop("not_covered")
        else:
            f["options.yml"]["not_covered"] = value
    problems = _problems(make_decision, mutate)
    assert _has(problems, "options.yml", "not_covered", "needs 'not_covered' with a 'text'"), problems


def test_not_covered_takes_only_a_text(make_decision: Maker) -> None:
    problems = _problems(make_decision, lambda f: f["options.yml"]["not_covered"].update(sources=["guide"]))
    assert _has(problems, "options.yml", "not_covered", "unknown field(s) sources"), problems


def test_real_not_covered_names_the_other_options_and_who_can_explain_them(decision: DecisionAid) -> None:
    text = (decision.not_covered or "").lower()
    for words in ("transplant", "wig", "hairpiece", "fibres", "micropigmentation", "don't cover",
                  "gp", "dermatologist", "hair-restoration surgeon"):
        assert words in text, words
