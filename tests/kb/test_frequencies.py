"""Shares of people (knowledge/frequencies.yml): each is one checked fact, named by entries and
options, and no answer or option states a share in its own prose."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from test_decision import minimal_decision

from bot import paths
from bot.kb.build import validate
from bot.kb.frequencies import per_100_of, prose_problems
from bot.kb.loader import KnowledgeError
from bot.kb.model import KnowledgeBase

Maker = Callable[..., tuple[Path, Path, Path]]
SEEDS = paths.REPO_ROOT.parent / "shared" / "seeds"

REDNESS: dict[str, Any] = {
    "id": "trial-redness", "label": "red skin for a few hours", "per_100": 88, "source_form": "88%",
    "who": "men who had it in one trial", "how_many": 25, "over": "8 weekly visits",
    "source": "guide", "kind": "harm", "certainty_note": "One small trial.",
}


@pytest.fixture
def make(make_knowledge: Maker, tmp_path: Path) -> Callable[..., tuple[Path, Path, Path]]:
    """The minimal knowledge plus a decision folder and frequencies.yml (one frequency,
    named by the first entry and by mesotherapy's harms); ``mutate`` edits them first."""

    def _make(mutate: Callable[[dict[str, Any]], None] | None = None) -> tuple[Path, Path, Path]:
        files: dict[str, Any] = {}

        def name_it(f: dict[str, Any]) -> None:
            f["entries"]["cost.yml"]["entries"][0]["figures"].append({"frequency": "trial-redness"})

        knowledge, clinic, rules = make_knowledge(name_it)
        decision = minimal_decision()
        meso = decision["options.yml"]["options"][0]
        meso["cells"]["harms"]["frequencies"] = ["trial-redness"]
        files.update(decision)
        files["frequencies.yml"] = {"reviewed": "2026-12-06", "review_due": "2027-12-06",
                                    "frequencies": [dict(REDNESS)]}
        files["cost.yml"] = yaml.safe_load((knowledge / "entries" / "cost.yml").read_text())
        if mutate:
            mutate(files)
        (knowledge / "entries" / "cost.yml").write_text(yaml.safe_dump(files["cost.yml"]))
        (knowledge / "frequencies.yml").write_text(yaml.safe_dump(files["frequencies.yml"], sort_keys=False))
        folder = knowledge / "decision"
        folder.mkdir(exist_ok=True)
        for name in ("options.yml", "values.yml", "checklist.yml", "costs.yml"):
            (folder / name).write_text(yaml.safe_dump(files[name], sort_keys=False))
        return knowledge, clinic, rules

    return _make


def _problems(make: Maker, mutate: Callable[[dict[str, Any]], None]) -> list[str]:
    with pytest.raises(KnowledgeError) as info:
        validate(*make(mutate))
    return info.value.problems


def _has(problems: list[str], *parts: str) -> bool:
    return any(all(part in p for part in parts) for p in problems)


def _frequency(files: dict[str, Any]) -> dict[str, Any]:
    return files["frequencies.yml"]["frequencies"][0]


def _entry(files: dict[str, Any]) -> dict[str, Any]:
    return files["cost.yml"]["entries"][0]


def _harms(files: dict[str, Any]) -> dict[str, Any]:
    return files["options.yml"]["options"][0]["cells"]["harms"]


# --- one fact, named from an entry and an option -------------------------------------------

def test_a_frequency_is_one_fact_named_by_entries_and_options(make: Maker) -> None:
    kb = validate(*make())
    frequency = kb.frequencies["trial-redness"]
    assert (frequency.per_100, frequency.source_form, frequency.how_many, frequency.over) == \
        (88, "88%", 25, "8 weekly visits")
    figure = kb.entries["cost-session"].figures[-1]
    assert figure.frequency is frequency and figure.value == "88%" and figure.source == "guide"
    assert kb.decision.option("mesotherapy").cells["harms"].frequencies == (frequency,)
    again = KnowledgeBase.from_dict(json.loads(json.dumps(kb.to_dict())))
    assert again.frequencies == kb.frequencies
    assert again.entries["cost-session"].figures[-1].frequency == frequency
    assert again.decision.option("mesotherapy").cells["harms"].frequencies == (frequency,)


def test_knowledge_without_frequencies_has_none(make_knowledge: Maker) -> None:
    assert validate(*make_knowledge()).frequencies == {}


def test_the_source_form_is_read_as_a_number_out_of_100() -> None:
    assert per_100_of("88%") == 88 and per_100_of("92.9 %") == 93 and per_100_of("7.1%") == 7
    assert per_100_of("33 of 541 patients") == 6 and per_100_of("22 out of 25 men") == 88
    assert per_100_of("most of them") is None


# --- each rule names the file and the frequency ----------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ({"per_100": 80}, "'per_100' is 80, but '88%' is 88 out of 100"),
    ({"per_100": 101}, "'per_100' must be a whole number from 0 to 100"),
    ({"per_100": True}, "'per_100' must be a whole number from 0 to 100"),
    ({"per_100": 88.0}, "'per_100' must be a whole number from 0 to 100"),
    ({"how_many": 0}, "'how_many' must be a whole number of people, or null"),
    ({"source": "ghost"}, "unknown source id 'ghost'"),
    ({"kind": "side effect"}, "'kind' must be one of benefit, harm, background"),
    ({"who": "  "}, "missing 'who'"),
    ({"over": None}, "missing 'over'"),
    ({"certainty_note": ""}, "missing 'certainty_note'"),
    ({"percent": 88}, "unknown field(s) percent"),
    ({"id": "Trial Redness"}, "needs an 'id' of lowercase words"),
])
def test_a_bad_frequency_is_rejected(make: Maker, change: dict[str, Any], message: str) -> None:
    problems = _problems(make, lambda f: _frequency(f).update(change))
    assert _has(problems, "frequencies.yml", "frequency '", message), problems


def test_how_many_must_be_given(make: Maker) -> None:
    problems = _problems(make, lambda f: _frequency(f).pop("how_many"))
    assert _has(problems, "frequencies.yml", "trial-redness", "needs 'how_many'"), problems


def test_how_many_is_null_when_the_source_is_silent(make: Maker) -> None:
    kb = validate(*make(lambda f: _frequency(f).update(how_many=None)))
    assert kb.frequencies["trial-redness"].how_many is None


def test_duplicate_frequency_ids_are_rejected(make: Maker) -> None:
    problems = _problems(make, lambda f: f["frequencies.yml"]["frequencies"].append(dict(REDNESS)))
    assert _has(problems, "frequencies.yml", "trial-redness", "duplicate id"), problems


def test_an_entry_naming_an_unknown_frequency_is_rejected(make: Maker) -> None:
    problems = _problems(make, lambda f: _entry(f)["figures"].append({"frequency": "ghost"}))
    assert _has(problems, "cost.yml", "cost-session", "{frequency: ghost}", "frequencies.yml"), problems


def test_an_entry_must_list_the_source_of_its_frequency(make: Maker) -> None:
    def mutate(f: dict[str, Any]) -> None:
        _frequency(f)["source"] = "clinic"
        _harms(f)["sources"] = ["clinic"]

    problems = _problems(make, mutate)
    assert _has(problems, "cost-session", "frequency 'trial-redness' cites 'clinic'"), problems


@pytest.mark.parametrize("text", [
    "In one trial, 88% of the men had red skin (guide).",
    "In one trial, 88 in 100 men had red skin (guide).",
    "About six in every hundred improved (guide).",
    "It worked for 38 percent of them (guide).",
])
def test_an_answer_may_not_state_a_share_in_its_own_words(make: Maker, text: str) -> None:
    problems = _problems(make, lambda f: _entry(f).update(answer=text))
    assert _has(problems, "cost.yml", "cost-session", "states a share of people", "frequencies.yml"), problems


def test_a_medicine_strength_is_not_a_share() -> None:
    assert prose_problems("24 men used 5% minoxidil solution twice a day.") == []
    assert prose_problems("A price of 100 to 200 dollars, for 100 days.") == []


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda f: _harms(f).update(frequencies=["ghost"]), "unknown frequency id 'ghost'"),
    (lambda f: f["options.yml"]["options"][0]["cells"]["benefits"].update(frequencies=["trial-redness"]),
     "frequency 'trial-redness' is a harm, not a benefit"),
    (lambda f: f["options.yml"]["options"][0]["cells"]["cost"].update(frequencies=["trial-redness"]),
     "only benefits and harms cells may name frequencies"),
    (lambda f: _harms(f).update(sources=["clinic"]),
     "frequency 'trial-redness' cites 'guide', which is not in the cell's 'sources'"),
    (lambda f: _harms(f).update(text="In one trial, 88 in 100 men had red skin."), "states a share of people"),
    (lambda f: _harms(f).update(frequencies="trial-redness"), "'frequencies' must be a list of ids"),
])
def test_an_option_cell_names_frequencies_of_its_own_kind_and_sources(
        make: Maker, mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    problems = _problems(make, mutate)
    assert _has(problems, "options.yml", "option 'mesotherapy'", message), problems


# --- the shipped knowledge ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return validate(paths.knowledge_dir(), paths.clinic_file(), paths.rules_dir())


def test_every_shipped_frequency_is_shown_somewhere(kb: KnowledgeBase) -> None:
    named = {f.frequency.id for e in kb.entries.values() for f in e.figures if f.frequency}
    named |= {f.id for o in kb.decision.options for c in o.cells.values() for f in c.frequencies}
    assert named == set(kb.frequencies)


def test_shipped_frequencies_match_their_sources(kb: KnowledgeBase) -> None:
    """The source's own form and the group size are the numbers in the source document."""
    for frequency in kb.frequencies.values():
        seed = " ".join((SEEDS / kb.sources[frequency.source].file).read_text(encoding="utf-8").split())
        numbers = re.findall(r"\d+(?:\.\d+)?", frequency.source_form)
        if frequency.how_many:
            numbers.append(str(frequency.how_many))
        for number in numbers:
            assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", seed), (frequency.id, number)


def test_the_trial_figures_carry_who_how_many_and_how_long(kb: KnowledgeBase) -> None:
    redness = kb.frequencies["trial-redness"]
    assert (redness.per_100, redness.how_many, redness.over, redness.kind) == (88, 25, "8 weekly visits", "harm")
    treated, placebo = kb.frequencies["dutasteride-denser-hair"], kb.frequencies["dutasteride-placebo-denser-hair"]
    assert (treated.per_100, treated.source_form, treated.how_many) == (93, "92.9%", 14)
    assert (placebo.per_100, placebo.source_form, placebo.how_many) == (7, "7.1%", 14)
    assert "7 weekly injections" in treated.over


def test_mesotherapy_benefits_and_harms_share_one_denominator(kb: KnowledgeBase) -> None:
    cells = kb.decision.option("mesotherapy").cells
    assert [f.kind for f in cells["benefits"].frequencies] == ["benefit", "benefit"]
    assert [f.kind for f in cells["harms"].frequencies] == ["harm"]
    # What no source counts is said in the option's own words.
    assert "No source says how many people get these other harms" in cells["harms"].text
