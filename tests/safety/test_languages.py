"""Messages in other languages (bot/safety/languages.py): which language, and urgent or not.

tests/safety/languages.yml holds phrases per language (emergency, crisis, ordinary), English
messages that must stay English, and messages in other scripts. On top of those, every English
user message the project has (the evaluation questions, the safety phrasings and the NLU
training examples) must be identified as English: a wrong "foreign" verdict sends a patient
"English only" instead of an answer.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.safety import languages
from bot.safety.languages import (
    LEVELS,
    SUPPORTED,
    LexiconError,
    available_languages,
    detect_urgent,
    first_level,
    identify,
    load_lexicon,
    normalise,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PHRASES: dict[str, Any] = yaml.safe_load((HERE / "languages.yml").read_text(encoding="utf-8"))
GROUPS = ("emergency", "crisis", "ordinary")
MINIMUM = {"emergency": 8, "crisis": 8, "ordinary": 15}
ENTITY = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")
# The NLU intent whose examples are messages in other languages on purpose.
OTHER_LANGUAGE_INTENT = "other_language"


def phrases(group: str) -> list[tuple[str, str]]:
    return [(code, text) for code in SUPPORTED for text in PHRASES[code][group]]


def nlu_examples() -> dict[str, list[tuple[str, str]]]:
    """(intent, text) of every example in data/nlu/*.yml, entity markup removed, by file."""
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu", []):
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    text = ENTITY.sub(r"\1", line[2:].strip())
                    found.setdefault(path.name, []).append((str(block.get("intent")), text))
    return found


def english_sources() -> dict[str, list[str]]:
    """Every English user message of the project, by source."""
    sources: dict[str, list[str]] = {}
    for name in ("eval/questions.yml", "eval/holdout.yml"):
        data = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))
        sources[name] = [q["text"] for q in data["questions"]]
    phrasings = yaml.safe_load((HERE / "phrasings.yml").read_text(encoding="utf-8"))
    sources["tests/safety/phrasings.yml"] = [item["text"] for items in phrasings.values() for item in items]
    for name, examples in nlu_examples().items():
        sources[f"data/nlu/{name}"] = [t for intent, t in examples if intent != OTHER_LANGUAGE_INTENT]
    return sources


# --- the lexicons ------------------------------------------------------------------------
def test_supported_languages_are_the_lexicon_files() -> None:
    assert set(available_languages()) == set(SUPPORTED)
    assert set(languages.LATIN_SUPPORTED) == set(SUPPORTED) - {"ar"}
    for code, lexicon in languages.lexicons().items():
        assert lexicon.name and lexicon.markers, code
        assert all(lexicon.urgent[level] for level in LEVELS), code


def test_every_language_has_enough_test_phrases() -> None:
    for code in SUPPORTED:
        for group, minimum in MINIMUM.items():
            assert len(PHRASES[code][group]) >= minimum, (code, group)


# --- identification ------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "text"), [(c, t) for g in GROUPS for c, t in phrases(g)])
def test_every_phrase_is_identified_as_its_language(code: str, text: str) -> None:
    assert identify(text) == code, text


@pytest.mark.parametrize("text", PHRASES["en"])
def test_english_with_shorthand_brands_and_foreign_words_stays_english(text: str) -> None:
    assert identify(text) == "en", text


@pytest.mark.parametrize("text", PHRASES["other"])
def test_other_scripts_are_other(text: str) -> None:
    assert identify(text) == "other", text


@pytest.mark.parametrize("source", sorted(english_sources()))
def test_every_english_message_of_the_project_is_english(source: str) -> None:
    messages = english_sources()[source]
    assert messages, source
    wrong = [(text, identify(text)) for text in messages if identify(text) != "en"]
    assert not wrong, f"{source}: {len(wrong)} of {len(messages)} not identified as English: {wrong}"


def test_the_other_language_training_examples_are_not_english() -> None:
    examples = [t for items in nlu_examples().values() for intent, t in items if intent == OTHER_LANGUAGE_INTENT]
    if not examples:
        pytest.skip(f"no '{OTHER_LANGUAGE_INTENT}' intent in data/nlu")
    wrong = [t for t in examples if identify(t) not in SUPPORTED]
    assert not wrong, wrong


def test_text_without_letters_is_english_and_arabic_script_is_arabic() -> None:
    assert identify("") == "en"
    assert identify("??? 123 :)") == "en"
    assert identify("كم سعر الجلسة؟") == "ar"
    assert identify("مرحبا how much is it") == "en"  # more Latin letters than Arabic ones


def test_greetings_alone_stay_english_but_not_a_question_after_them() -> None:
    assert identify("merci beaucoup") == "en"
    assert identify("hola amigo") == "en"
    assert identify("merci beaucoup, combien coûte une séance ?") == "fr"
    assert identify("hola, cuánto cuesta el tratamiento") == "es"


# --- urgent statements --------------------------------------------------------------------
@pytest.mark.parametrize(("code", "text"), phrases("emergency"))
def test_every_emergency_phrase_is_caught(code: str, text: str) -> None:
    levels = detect_urgent(text, code)
    assert first_level(levels) == "emergency", (text, levels)


@pytest.mark.parametrize(("code", "text"), phrases("crisis"))
def test_every_crisis_phrase_is_caught(code: str, text: str) -> None:
    assert "crisis" in detect_urgent(text, code), text


@pytest.mark.parametrize(("code", "text"), phrases("ordinary"))
def test_ordinary_messages_raise_no_alarm(code: str, text: str) -> None:
    assert detect_urgent(text, code) == (), text


def test_levels_come_most_severe_first() -> None:
    levels = detect_urgent("je veux mourir et j'arrive plus à respirer", "fr")
    assert levels == ("crisis", "emergency")
    assert first_level(levels) == "crisis"
    assert first_level(("crisis",)) == "crisis"
    assert first_level(()) is None


def test_only_the_foreign_lexicon_is_looked_at() -> None:
    assert detect_urgent("je vais bien, my lips are swelling lol", "fr") == ()
    assert detect_urgent("my lips are swelling", "en") == ()
    assert detect_urgent("no puedo respirar", "other") == ()
    assert detect_urgent("no puedo respirar", "es") == ("emergency",)


def test_an_exception_cancels_only_the_match_it_overlaps() -> None:
    assert detect_urgent("je n'ai pas de difficulté à respirer", "fr") == ()
    assert detect_urgent("je n'ai pas de difficulté à respirer mais mes lèvres gonflent", "fr") == ("emergency",)


def test_letters_typed_many_times_still_match() -> None:
    assert detect_urgent("jétoufffffe", "fr") == ("emergency",)
    assert detect_urgent("socorrooo nao consigo respirarrrr", "pt") == ("emergency",)


# --- normalisation ------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("J'étouffe !!", " j etouffe "),
    ("Ça-va?", " ca va "),
    ("Straße   ÜBER", " strasse uber "),
    ("n’arrive  pas", " n arrive pas "),
    ("أَلَمٌ في الصَّدْرِ", " الم في الصدر "),
    ("حلقي مقفولة ــ جدا", " حلقي مقفوله جدا "),
    ("أنا إلى", " انا الي "),
    ("", " "),
    ("...", " "),
])
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


# --- lexicon files ------------------------------------------------------------------------
GOOD = """
name: Test
markers: [abc]
emergency: ['\\bhelp\\b']
crisis: ['\\bsad\\b']
except: {emergency: ['\\bno help\\b']}
"""


@pytest.mark.parametrize(("content", "message"), [
    (GOOD.replace("'\\bhelp\\b'", "'(unclosed'"), "emergency[0]: bad regular expression"),
    (GOOD.replace("crisis: ['\\bsad\\b']", ""), "'crisis' is missing"),
    (GOOD + "extra: 1\n", "unknown keys ['extra']"),
    (GOOD.replace("[abc]", "[abc, on]"), "True is not a string"),
    (GOOD.replace("{emergency:", "{urgent:"), "'except' must map"),
    ("- just a list\n", "expected a mapping"),
    ("name: [unclosed\n", "cannot be read"),
])
def test_a_bad_lexicon_file_is_named_in_the_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "xx.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LexiconError) as error:
        load_lexicon(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_a_good_lexicon_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "xx.yml"
    path.write_text(GOOD, encoding="utf-8")
    lexicon = load_lexicon(path)
    assert lexicon.code == "xx" and lexicon.markers == frozenset({"abc"})
    assert languages._urgent_matches(normalise("Help!"), lexicon) == ("emergency",)
    assert languages._urgent_matches(normalise("no help, just sad"), lexicon) == ("crisis",)
    (tmp_path / "english.yml").write_text("words: []\n", encoding="utf-8")
    assert available_languages(tmp_path) == ("xx",)


def test_nothing_is_read_or_loaded_at_import() -> None:
    script = """
import builtins, io, sys
opened = []
real_open = io.open
def spy(file, *args, **kwargs):
    opened.append(str(file))
    return real_open(file, *args, **kwargs)
builtins.open = io.open = spy
import bot.safety.languages as m
heavy = [name for name in ("py3langid", "spacy", "spacy_lookups_data", "yaml", "numpy") if name in sys.modules]
caches = [f.__name__ for f in (m.lexicons, m.english_vocabulary, m._identifier, m._courtesy_pattern,
                               m._distinctive_markers, m._all_markers) if f.cache_info().currsize]
print(opened, heavy, caches)
assert not opened and not heavy and not caches
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_identification_and_detection_are_fast() -> None:
    languages.warm_up()
    messages = [t for texts in english_sources().values() for t in texts]
    messages += [t for g in GROUPS for _, t in phrases(g)]
    start = time.perf_counter()
    for text in messages:
        code = identify(text)
        detect_urgent(text, code)
    per_message = (time.perf_counter() - start) / len(messages)
    assert per_message < 0.002, f"{per_message * 1000:.3f} ms per message"
