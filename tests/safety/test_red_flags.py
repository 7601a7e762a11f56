"""The red-flag rule layer (contract/safety/red_flags.py) against the dev set of phrasings.

tests/safety/phrasings.yml holds phrasings written the way people type. Every emergency and
crisis phrasing must be caught at its level or a more severe one; same-day and prompt ones
at 95% or more each; symptom-free messages may raise at most 5% false alarms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.levels import LEVELS, severity
from contract.safety.red_flags import Detection, Term, detect, in_context, load_rules

PHRASINGS = Path(__file__).resolve().parent / "phrasings.yml"
DATA: dict[str, list[dict[str, Any]]] = yaml.safe_load(PHRASINGS.read_text(encoding="utf-8"))
MIN_CATCH = {"same_day": 0.95, "prompt": 0.95}
MAX_FALSE_ALARMS = 0.05


def caught(detection: Detection, level: str) -> bool:
    """Caught at the expected level or a more severe one."""
    return detection.level is not None and severity(detection.level) >= severity(level)


def test_the_dev_set_has_at_least_twenty_phrasings_per_level() -> None:
    for level in (*LEVELS, "no_flag"):
        assert len(DATA[level]) >= 20, level


@pytest.mark.parametrize("text", [c["text"] for c in DATA["emergency"]])
def test_every_emergency_phrasing_is_caught(text: str) -> None:
    assert detect(text).level == "emergency", text


@pytest.mark.parametrize("text", [c["text"] for c in DATA["crisis"]])
def test_every_crisis_phrasing_is_caught(text: str) -> None:
    assert caught(detect(text), "crisis"), text


@pytest.mark.parametrize("level", ["same_day", "prompt"])
def test_same_day_and_prompt_catch_rates(level: str) -> None:
    cases = DATA[level]
    missed = [c["text"] for c in cases if not caught(detect(c["text"]), level)]
    rate = 1 - len(missed) / len(cases)
    assert rate >= MIN_CATCH[level], f"{level}: {rate:.0%} caught; missed: {missed}"


def test_false_alarms_on_symptom_free_messages_stay_under_the_ceiling() -> None:
    cases = DATA["no_flag"] + DATA["refuse"]
    misfires = [(c["text"], detect(c["text"]).flags) for c in cases if detect(c["text"]).level]
    assert len(misfires) / len(cases) <= MAX_FALSE_ALARMS, misfires


@pytest.mark.parametrize("level", ["emergency", "same_day", "prompt"])
def test_the_main_flag_of_each_phrasing_is_among_the_flags_found(level: str) -> None:
    cases = [c for c in DATA[level] if c.get("flag")]
    wrong = [(c["text"], c["flag"], detect(c["text"]).flags) for c in cases if c["flag"] not in detect(c["text"]).flags]
    assert len(wrong) / len(cases) <= 0.05, wrong


# --- focused behaviour ------------------------------------------------------------------
@pytest.mark.parametrize("text, flag", [
    ("no fever", "fever"),
    ("not bleeding at all", "bleeding"),
    ("never fainted in my life", "fainting"),
    ("no swelling, no pus", "pus"),
    ("nothing oozing", "open_sore"),
    ("my lips arent swollen", "face_swelling"),
])
def test_a_negation_just_before_cancels_the_flag(text: str, flag: str) -> None:
    assert flag not in detect(text).flags


@pytest.mark.parametrize("text, flag", [
    ("it doesnt stop bleeding", "bleeding"),          # the negator is part of the symptom
    ("no fever, but my lips are swelling", "face_swelling"),  # another clause
    ("not sure if its normal but my throat feels tight", "throat"),  # a hedge
    ("i dont think i can breathe properly", "breathing"),
])
def test_negation_does_not_reach_beyond_its_phrase(text: str, flag: str) -> None:
    assert flag in detect(text).flags


@pytest.mark.parametrize("text", [
    "i dont want to live anymore", "not sure i want to be alive", "no point living", "never going to stop wanting to die",
    "is it normal to want to die?", "what if i kill myself", "can hair loss make you suicidal? i feel suicidal",
])
def test_crisis_is_never_cancelled_by_negation_or_a_question(text: str) -> None:
    assert detect(text).level == "crisis"


@pytest.mark.parametrize("text, flag", [
    ("cant brethe", "breathing"), ("my lips are swolen", "face_swelling"), ("hivs all over me", "hives"),
    ("i faintd", "fainting"), ("fevr and chills", "fever"), ("still bleding", "bleeding"),
    ("feeling sucidal", "crisis"), ("im so dizy and my heart is racing", "chest_heart"),
    ("cant breatheeee", "breathing"), ("my throat is closinggg", "throat"),
])
def test_typos_and_stretched_letters_still_match(text: str, flag: str) -> None:
    assert flag in detect(text).flags


@pytest.mark.parametrize("text", [
    "is swelling a side effect?", "what if i get pus?", "can it cause hives?", "can it make your face swell up",
    "what should i do if my throat swells after", "does anyone ever faint during it",
])
def test_a_general_question_is_a_mention_not_an_alarm(text: str) -> None:
    detection = detect(text)
    assert detection.level is None and detection.mention_only, detection


@pytest.mark.parametrize("text, level", [
    ("can it cause swelling? my lips are huge right now", "emergency"),
    ("what if its infected, theres pus coming out since yesterday", "same_day"),
    ("is it normal that my face is swelling", "emergency"),
])
def test_a_question_about_a_present_symptom_is_a_report(text: str, level: str) -> None:
    detection = detect(text)
    assert detection.level == level and not detection.mention_only


def test_several_symptoms_give_every_flag_and_the_most_severe_level() -> None:
    detection = detect("theres pus in a few spots, i have a fever and now my lips are swelling")
    assert {"pus", "fever", "face_swelling"} <= set(detection.flags)
    assert detection.level == "emergency"
    assert {f.flag for f in detection.findings} >= {"pus", "fever", "face_swelling"}


def test_crisis_outranks_every_other_level() -> None:
    """One order for the bot and the API (contract.levels): crisis support comes first."""
    assert detect("theres pus everywhere and honestly i want to die").level == "crisis"
    assert detect("i want to die and i cant breathe").level == "crisis"
    assert set(detect("i want to die and i cant breathe").flags) >= {"breathing"}


@pytest.mark.parametrize("text", ["my wife cant breathe", "my husbands lips are swelling", "my son fainted"])
def test_someone_elses_symptoms_count(text: str) -> None:
    assert detect(text).level == "emergency"


def test_findings_name_the_words_that_matched() -> None:
    [finding] = [f for f in detect("my throat is closing").findings if f.flag == "throat"]
    assert finding.level == "emergency" and "throat" in finding.words and "closing" in finding.words


@pytest.mark.parametrize("text", ["", "   ", "hello", "/affirm", "how much is it"])
def test_ordinary_text_has_no_flag(text: str) -> None:
    assert not detect(text)


def test_rules_are_loaded_once_and_every_level_is_used() -> None:
    rules = load_rules()
    assert load_rules() is rules
    assert {flag.level for flag in rules.flags} == set(LEVELS)
    crisis = [f for f in rules.flags if f.level == "crisis"]
    assert crisis and all(not f.negatable and not f.question_frames for f in crisis)


# --- indirect crisis warning signs, similes, later changes, context frames -------------
@pytest.mark.parametrize("text", [
    "been looking up how many tablets it would take",
    "i keep searching for the quickest way to die",
    "ive been saving up my sleeping pills",
    "wrote a goodbye note to my sister",
    "this is me saying goodbye to you all for good",
    "ive been giving my things away",
    "i really am a burden to my family",
    "they would all be happier if i wasnt around",
    "at the end of my tether, cant go on like this",
    "cant do this any more",
    "stood on the bridge looking down thinking of jumping",
    "i wouldnt mind never waking up",
    "i burned my arm on purpose",
    "thinking about sewer slide",
    "want to unalive",
    "gonna self delete",
])
def test_indirect_warning_signs_and_slang_are_crisis(text: str) -> None:
    assert detect(text).level == "crisis", text


@pytest.mark.parametrize("text", [
    "how many minoxidil tablets a day",
    "im done with my hair, it never sits right",
    "dying to know how my crown will look",
    "the price is killing me",
    "id kill for thick hair like my brothers",
    "fed up with being bald",
    "saving money on tablets by buying generic",
    "how many tablets would it take to see results",
    "i have a plan to save up for it",
    "thinking of jumping ship to another clinic",
    "would it be a burden on the nurses if i book weekly",
    "i dont want to carry on with these questions",
    "i nearly died when i saw the price",
    "my sister said she wanted to die when she got her bill, is it really that much",
    "he could have died at the price they quoted",
])
def test_crisis_words_in_other_senses_are_no_alarm(text: str) -> None:
    assert detect(text).level is None, detect(text)


@pytest.mark.parametrize("text", [
    "i want to die",
    "i wanted to die when i saw my bald patch",
    "i wanted to die when i saw myself in the mirror",
    "the bill is huge and honestly i want to die",
])
def test_a_price_figure_of_speech_does_not_cover_other_crisis_words(text: str) -> None:
    assert detect(text).level == "crisis", text


def test_any_word_in_a_term_matches_one_word_only() -> None:
    term = Term.parse("die when _ saw _ bill")
    assert term.words[2] == ("", True) and len(term.words) == 6
    assert detect("she wanted to die when she saw her bill").level is None
    with pytest.raises(ValueError):
        Term.parse("_ saw the bill")


@pytest.mark.parametrize("text, flag", [
    ("like im breathing through a straw", "breathing"),
    ("i cant get enough air in", "breathing"),
    ("my chest feels like theres an elephant sitting on it", "chest_heart"),
    ("blotches from head to toe", "hives"),
    ("welts all up my arms and neck", "hives"),
    ("everything goes dark when i stand up", "fainting"),
    ("my vision keeps going grey", "headache_vision"),
    ("his face blew up like a balloon", "face_swelling"),
])
def test_emergencies_described_by_simile_or_effect(text: str, flag: str) -> None:
    detection = detect(text)
    assert detection.level == "emergency" and flag in detection.flags, detection


@pytest.mark.parametrize("text, level, flag", [
    ("the redness has gone past the line i drew", "same_day", "redness"),
    ("the sore area is bigger than this morning", "same_day", "redness"),
    ("the skin by one spot is getting blacker", "same_day", "dark_skin"),
    ("that patch looks shiny and dark", "same_day", "dark_skin"),
    ("firm swelling on my scalp that keeps enlarging weeks after", "prompt", "lumps"),
    ("smooth shiny patches with no hair where they injected", "prompt", "patchy_hair_loss"),
    ("bald spots where the needles went", "prompt", "patchy_hair_loss"),
])
def test_later_changes_are_flagged(text: str, level: str, flag: str) -> None:
    detection = detect(text)
    assert caught(detection, level) and flag in detection.flags, detection


@pytest.mark.parametrize("text", [
    "is it possible to get lumps",
    "would hives count as an emergency",
    "say i got a temperature, what then",
    "suppose my lips swelled, who do i call",
])
def test_hypotheticals_without_if_or_when_are_mentions(text: str) -> None:
    detection = detect(text)
    assert detection.level is None and detection.mention_only, detection


@pytest.mark.parametrize("text", [
    "the price made me choke",
    "nearly fainted when i saw the price",
    "the bill almost gave me a heart attack",
    "my jaw hit the floor when i saw the results",
])
def test_figures_of_speech_about_price_or_surprise_are_no_alarm(text: str) -> None:
    assert detect(text).level is None, detect(text)


@pytest.mark.parametrize("text", [
    "fainted at a blood test years ago",
    "i used to faint as a kid",
    "passed out at the dentist last year",
])
def test_a_past_episode_that_is_over_is_no_alarm(text: str) -> None:
    assert detect(text).level is None, detect(text)


@pytest.mark.parametrize("text", [
    "used to faint as a kid but i fainted again today after the session",
    "last year i had a lump from the injections and its still there",
    "im used to needles but i just fainted",
])
def test_a_past_episode_with_a_present_one_is_flagged(text: str) -> None:
    assert detect(text).level is not None, text


@pytest.mark.parametrize("text", [
    "my skin is naturally quite dark",
    "i have dark skin and dark hair",
    "my kid has a fever, can i still come in tomorrow",
    "im allergic to lots of things, can i still have it",
    "i have an infection on my scalp, can i have it",
])
def test_skin_tone_a_childs_illness_and_eligibility_are_no_alarm(text: str) -> None:
    assert detect(text).level is None, detect(text)


@pytest.mark.parametrize("text, flag", [
    ("my husband has a fever since his session yesterday", "fever"),
    ("i have an infection where they injected, can i still have my next session", "pus"),
    ("pus coming out of the spots, can i still go to work", "pus"),
    ("my skin is going dark where they injected", "dark_skin"),
])
def test_a_link_to_the_treatment_keeps_the_flag(text: str, flag: str) -> None:
    assert flag in detect(text).flags, detect(text)


@pytest.mark.parametrize("text", [
    "i tried to kill myself years ago and i feel like that again",
    "i used to self harm as a teenager",
    "can i still have it? i keep thinking about ending it all",
    "nearly died when i saw the price, honestly i want to die anyway",
])
def test_context_frames_never_hide_crisis(text: str) -> None:
    assert detect(text).level == "crisis", text


@pytest.mark.parametrize("text", [
    "my cousins lips blew up after lip fillers like 2 yrs ago, could meso do that to me",
    "my ex had an infected piercing once with pus and everything, could you get an infection from meso",
    "my nan had a hard lump from a jab back in the 80s, can meso leave lumps?",
])
def test_someone_elses_reaction_that_is_over_is_information(text: str) -> None:
    detection = detect(text)
    assert detection.level is None, detection
    assert in_context(text.split(",")[0], "emergency") or detection.mention_only


@pytest.mark.parametrize("text", [
    "my wife just had her session and now her lips are swelling",
    "my husband had meso an hour ago and he cant breathe properly",
    "my gf just had her scalp jabs and shes wheezing and gasping a bit",
])
def test_someone_else_now_still_alarms(text: str) -> None:
    assert detect(text).level == "emergency"
    assert not in_context(text, "emergency")


def test_crisis_is_never_put_in_context() -> None:
    assert not in_context("years ago my friend said she wanted to die", "crisis")


@pytest.mark.parametrize("text", [
    "i dont have a fever or any pus",
    "i don't have any swelling or trouble breathing, i just want to know the price",
    "no fever, no swelling, nothing like that, just want to know how much it is",
])
def test_a_negation_carries_over_a_list_of_symptoms(text: str) -> None:
    detection = detect(text)
    assert detection.level is None and detection.negated, detection


@pytest.mark.parametrize("text, level", [
    ("no fever but my lips are swelling", "emergency"),
    ("no fever or anything but now theres pus everywhere", "same_day"),
    ("i havent slept and now theres pus coming out", "same_day"),
])
def test_a_negation_does_not_reach_past_its_list(text: str, level: str) -> None:
    assert detect(text).level == level


@pytest.mark.parametrize("text", [
    "this is probably my last week anyway, ive sorted my will and left letters for everyone",
    "ive been giving my things away and getting my affairs in order",
])
def test_final_arrangements_are_a_crisis(text: str) -> None:
    assert detect(text).level == "crisis"


def test_a_double_chin_is_not_a_swollen_face() -> None:
    assert detect("is meso any good for a double chin").level is None
