"""Reading a whole message: sentences, and the questions in it wherever they are."""

from __future__ import annotations

import pytest

from bot.nlp.segments import MAX_QUESTIONS, read, sentences


def questions(text: str) -> list[str]:
    return [p.text for p in read(text).questions]


@pytest.mark.parametrize("text, expected", [
    ("does it hurt, how much is it and when will i see anything",
     ["does it hurt", "how much is it", "when will i see anything"]),
    ("how long does a session take and can I drive home after?",
     ["how long does a session take", "can I drive home after?"]),
    ("hi! how much per session? also does it hurt", ["how much per session?", "also does it hurt"]),
    ("I want to know how long it lasts and how much it costs",
     ["I want to know how long it lasts", "how much it costs"]),
])
def test_two_or_three_questions_in_one_message_are_each_found_in_order(text: str, expected: list[str]) -> None:
    reading = read(text)
    assert questions(text) == expected
    assert reading.compound


@pytest.mark.parametrize("text", [
    "is it safe and effective",
    "how much is it",
    "what happens if i stop after three?",
    "and the gun one, is it quicker?",
    "can i wash my hair and go to the gym after",
])
def test_one_question_stays_whole(text: str) -> None:
    reading = read(text)
    assert [p.text for p in reading.pieces] == [text]
    assert reading.pieces[0].question and not reading.compound


def test_a_long_story_is_long_and_its_question_is_found_at_the_end() -> None:
    text = ("So my hair started going about two years ago after a really stressful time at work, my "
            "partner noticed it first at the crown. I tried the shampoos and some vitamins from the "
            "chemist and nothing changed much. My sister had meso done abroad and swears by it. "
            "anyway how many sessions would someone like me usually need")
    reading = read(text)
    assert reading.long and len(reading.sentences) == 4
    assert questions(text) == ["anyway how many sessions would someone like me usually need"]
    assert not any(p.question for p in reading.pieces[:-1])


def test_a_short_question_pointing_back_is_read_with_the_statement_before_it() -> None:
    reading = read("I had my first session last week. Is that normal?")
    assert not reading.long
    assert questions("I had my first session last week. Is that normal?") == [
        "I had my first session last week. Is that normal?"]
    assert questions("i read some people get bald patches from it, how often does that happen?") == [
        "i read some people get bald patches from it how often does that happen?"]
    # A question that names its subject stands alone; so does one whose "they" is the clinic.
    assert questions("my hair is thinning at the crown, what can i do") == ["what can i do"]
    assert questions("needles make me really nervous haha, do they numb your scalp first?") == [
        "do they numb your scalp first?"]


def test_decimals_and_abbreviations_do_not_split_sentences() -> None:
    assert sentences("the study found 38.5 percent more hair. what about women?") == [
        "the study found 38.5 percent more hair.", "what about women?"]


def test_at_most_three_questions_are_answered() -> None:
    text = "does it hurt? how much is it? how long does it take? is it safe? when will i see results?"
    assert len(read(text).questions) == MAX_QUESTIONS == 3


def test_empty_and_punctuation_only_messages_have_no_pieces() -> None:
    assert read("").pieces == () and read("?!?").pieces == ()


@pytest.mark.parametrize("text, expected", [
    ("does stress make your hair fall out and can meso fix stress hair loss",
     ["does stress make your hair fall out", "can meso fix stress hair loss"]),
    ("im pregnant can i have it, and if not what can i use instead",
     ["im pregnant can i have it", "if not what can i use instead"]),
    ("how many hairs a day is normal to lose and at what point do ppl go for something like meso",
     ["how many hairs a day is normal to lose", "at what point do ppl go for something like meso"]),
])
def test_questions_without_a_question_word_first_are_still_found(text: str, expected: list[str]) -> None:
    assert questions(text) == expected


def test_an_announced_question_in_a_long_story_is_the_question() -> None:
    text = ("ok so bit of background, im 31 and work long shifts. my dad is bald so i saw it coming. "
            "anyway my actual question is how many sessions people usually need before they see anything")
    assert questions(text) == ["anyway my actual question is how many sessions people usually need before "
                               "they see anything"]


def test_a_long_story_without_any_question_form_is_asked_by_its_last_sentence() -> None:
    text = ("money is tight since the baby came and my partner is on leave. my mate went abroad for it. "
            "i just need a rough figure for the whole course not one session")
    reading = read(text)
    assert [p.question for p in reading.pieces] == [False, False, True]
    text = ("money is tight since the baby came and my partner is on leave. my mate went abroad for it "
            "and paid a fortune. so yeah thats where i am with all of it right now")
    assert read(text).pieces[-1].question and not any(p.question for p in read(text).pieces[:-1])
