"""Each validation rule rejects a bad knowledge file with a message naming file and entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from bot.kb.build import build, validate
from bot.kb.loader import KnowledgeError, load_clinic

Maker = Callable[..., tuple[Path, Path, Path]]


def _problems(make: Maker, mutate: Callable[[dict[str, Any]], None]) -> list[str]:
    knowledge, clinic, rules = make(mutate)
    with pytest.raises(KnowledgeError) as info:
        validate(knowledge, clinic, rules)
    return info.value.problems


def _first_entry(files: dict[str, Any]) -> dict[str, Any]:
    return files["entries"]["cost.yml"]["entries"][0]


def test_the_minimal_knowledge_is_valid(make_knowledge: Maker) -> None:
    kb = validate(*make_knowledge())
    assert set(kb.entries) == {"cost-session", "pain-level"}
    assert kb.sources["clinic"].sells_treatment is True
    assert kb.clinic.price_per_session == 120.0


def test_entry_without_a_source_is_rejected(make_knowledge: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        _first_entry(f)["sources"] = []
        _first_entry(f)["figures"] = []

    problems = _problems(make_knowledge, mutate)
    assert any("cost.yml" in p and "cost-session" in p and "no source" in p for p in problems), problems


def test_unknown_source_id_is_rejected(make_knowledge: Maker) -> None:
    problems = _problems(make_knowledge, lambda f: _first_entry(f).update(sources=["guide", "nobody"]))
    assert any("cost.yml" in p and "cost-session" in p and "unknown source id 'nobody'" in p for p in problems)


def test_figure_citing_unknown_source_is_rejected(make_knowledge: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        _first_entry(f)["figures"] = [{"value": "5 sessions", "source": "ghost"}]

    problems = _problems(make_knowledge, mutate)
    assert any("cost-session" in p and "ghost" in p for p in problems)


def test_figure_source_must_be_listed_by_the_entry(make_knowledge: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        _first_entry(f)["figures"] = [{"value": "5 sessions", "source": "clinic"}]

    problems = _problems(make_knowledge, mutate)
    assert any("cost-session" in p and "not in the entry's 'sources'" in p for p in problems)


def test_missing_review_date_is_rejected(make_knowledge: Maker) -> None:
    problems = _problems(make_knowledge, lambda f: _first_entry(f).pop("reviewed"))
    assert any("cost.yml" in p and "cost-session" in p and "review date" in p for p in problems)


def test_malformed_review_date_is_rejected(make_knowledge: Maker) -> None:
    problems = _problems(make_knowledge, lambda f: _first_entry(f).update(reviewed="last week"))
    assert any("cost-session" in p and "review date" in p for p in problems)


def test_review_due_must_follow_review(make_knowledge: Maker) -> None:
    problems = _problems(make_knowledge, lambda f: _first_entry(f).update(review_due="2020-01-01"))
    assert any("cost-session" in p and "must come after" in p for p in problems)


def test_topic_claimed_without_entry_is_rejected(make_knowledge: Maker) -> None:
    problems = _problems(make_knowledge, lambda f: f["entries"].pop("pain.yml") and
                         f["entries"]["cost.yml"]["entries"][0].update(related=[]))
    assert any("topic 'pain' is claimed but has no entry" in p for p in problems)


def test_intent_answered_from_kb_without_topic_is_rejected(make_knowledge: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        f["rules"]["rules"].append(
            {"rule": "x", "steps": [{"intent": "ask_weather"}, {"action": "action_answer_question"}]})

    problems = _problems(make_knowledge, mutate)
    assert any("ask_weather" in p and "no topic" in p for p in problems)


def test_unknown_related_entry_is_rejected(make_knowledge: Maker) -> None:
    problems = _problems(make_knowledge, lambda f: _first_entry(f).update(related=["nowhere"]))
    assert any("cost-session" in p and "unknown entry 'nowhere'" in p for p in problems)


def test_duplicate_entry_id_is_rejected(make_knowledge: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        f["entries"]["pain.yml"]["entries"][0]["id"] = "cost-session"
        _first_entry(f)["related"] = []

    problems = _problems(make_knowledge, mutate)
    assert any("duplicate id" in p and "cost-session" in p for p in problems)


def test_unknown_certainty_and_too_few_questions_are_both_reported(make_knowledge: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        _first_entry(f)["certainty"] = "pretty sure"
        _first_entry(f)["questions"] = ["price?"]

    problems = _problems(make_knowledge, mutate)
    assert any("certainty" in p for p in problems) and any("questions" in p for p in problems)


def test_entry_file_with_unknown_topic_is_rejected(make_knowledge: Maker) -> None:
    problems = _problems(make_knowledge, lambda f: f["entries"]["cost.yml"].update(topic="weather"))
    assert any("cost.yml" in p and "'weather'" in p for p in problems)


def test_broken_yaml_names_the_file(make_knowledge: Maker) -> None:
    problems = _problems(make_knowledge, lambda f: f["entries"].update({"bad.yml": "topic: [unclosed"}))
    assert any("bad.yml" in p and "not valid YAML" in p for p in problems)


def test_source_must_say_whether_it_sells_the_treatment(make_knowledge: Maker) -> None:
    problems = _problems(make_knowledge, lambda f: f["sources.yml"]["sources"][0].pop("sells_treatment"))
    assert any("guide" in p and "sells_treatment" in p for p in problems)


def test_clinic_file_rejects_bad_price_and_unknown_field(tmp_path: Path) -> None:
    path = tmp_path / "clinic.yml"
    path.write_text("name: X\nprice_per_session: cheap\nfavourite_colour: blue\n")
    with pytest.raises(KnowledgeError) as info:
        load_clinic(path)
    text = str(info.value)
    assert "price_per_session" in text and "favourite_colour" in text


def test_a_failed_build_writes_nothing(make_knowledge: Maker, tmp_path: Path) -> None:
    knowledge, clinic, rules = make_knowledge(lambda f: _first_entry(f).pop("reviewed"))
    out = tmp_path / "out"
    with pytest.raises(KnowledgeError):
        build(knowledge, clinic, rules, out)
    assert not (out / "kb.json").exists()


def test_cli_reports_problems_and_exits_non_zero(make_knowledge: Maker, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.kb.__main__ import main

    knowledge, clinic, rules = make_knowledge(lambda f: _first_entry(f).update(sources=["nobody"], figures=[]))
    code = main(["validate", "--knowledge", str(knowledge), "--clinic", str(clinic), "--rules", str(rules)])
    assert code == 1
    assert "unknown source id 'nobody'" in capsys.readouterr().err
