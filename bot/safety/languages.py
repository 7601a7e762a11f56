"""Messages in French, Spanish, German, Italian, Portuguese and Arabic: which language, and
whether they report an emergency or a crisis.

The assistant answers in English only. A message in another language gets a reply in that
language saying so, unless it reports an emergency or a crisis, which gets the red-flag
reply in that language. The English red-flag rules (``contract/safety/red_flags.py``) are not
run on such messages, and this module never looks at English rules: only at the lexicons
``bot/safety/languages/<code>.yml`` (their header explains the format).

English first. A wrong "foreign" verdict on an English message is the costly mistake (the
patient gets "English only" instead of an answer), so ``identify`` calls a Latin-script
message foreign only when the signals agree: it has a word of that language that is not
also an English word (one of the lexicon's ``markers``) or one of its urgent phrases, fewer
than half of its words are English, and the language identifier (py3langid, limited to
English and the Latin-script languages here) is confident it is not English. Greetings and
thanks English speakers use too ("bonjour", "merci beaucoup", "hola amigo": a lexicon's
``courtesy``) are left out before deciding, so a message of only those stays English.

Usage::

    from bot.safety.languages import identify, detect_urgent, first_level
    identify("combien coûte une séance ?")                  # "fr"
    identify("hw much 4 meso")                              # "en"
    detect_urgent("j'arrive plus à respirer", "fr")         # ("emergency",)
    first_level(detect_urgent("bonjour", "fr"))             # None

Nothing is read at import: the lexicons, the English word list and the py3langid model are
loaded on first use and cached (``functools.lru_cache``).
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

from contract.levels import MOST_SEVERE_FIRST, URGENT

LEXICON_DIR: Path = Path(__file__).resolve().parent / "languages"
ENGLISH_FILE: Path = LEXICON_DIR / "english.yml"
SUPPORTED: tuple[str, ...] = ("fr", "es", "de", "it", "pt", "ar")
LATIN_SUPPORTED: tuple[str, ...] = ("fr", "es", "de", "it", "pt")
LEVELS: tuple[str, ...] = tuple(lv for lv in MOST_SEVERE_FIRST if lv in URGENT)  # crisis, emergency
ENGLISH = "en"
OTHER = "other"

# How sure py3langid must be that a message is not English (its probabilities over English
# and the Latin-script languages sum to 1) ...
MIN_PROBABILITY = 0.9
# ... or when the message has an emergency or crisis phrase of one of those languages.
MIN_PROBABILITY_URGENT = 0.5
# Without a marker of a language, its urgent phrases are looked for (as evidence of the
# language) only when py3langid gives it at least this probability.
MIN_PROBABILITY_TO_LOOK = 0.05
# Identification reads this much of a message; its start says which language it is in.
MAX_CHARS_FOR_MODEL = 400

_LEXICON_KEYS = frozenset({"name", "markers", "courtesy", "emergency", "crisis", "except"})
_CODE = re.compile(r"^[a-z]{2}$")
_NON_WORD = re.compile(r"[\W_]+")
_SPACES = re.compile(r"\s+")
_REPEATS = re.compile(r"(\w)\1{2,}")
_WORD = re.compile(r"[^\W\d_]+")
# Arabic letters written in more than one way in everyday typing, folded to one form.
# (Hamza on alef, waw and yeh is a combining mark after NFKD and is dropped with the marks.)
_ARABIC_FOLD = str.maketrans({
    "\u0649": "\u064a",  # alef maksura -> yeh
    "\u0629": "\u0647",  # teh marbuta -> heh
    "\u06cc": "\u064a",  # Farsi yeh -> yeh
    "\u06a9": "\u0643",  # keheh -> kaf
    "\u0640": None,      # tatweel (elongation) -> nothing
    "\u0671": "\u0627",  # alef wasla -> alef
})


class LexiconError(ValueError):
    """A lexicon file is missing, malformed, or has a pattern that does not compile."""


# --- text ------------------------------------------------------------------------------
def _fold(text: str) -> str:
    """NFKD, combining marks (Mn) dropped, Arabic letter variants folded. Case is kept."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return stripped.translate(_ARABIC_FOLD)


def normalise(text: str) -> str:
    """The text as the lexicon patterns see it.

    Case folded (``str.casefold``: lower case, and German "ß" -> "ss"); Unicode NFKD with
    combining marks (category Mn) removed, so "é" -> "e" and Arabic short vowels, shadda and
    hamza marks are dropped; Arabic letter variants folded (alef maksura -> yeh, teh marbuta
    -> heh, tatweel removed); apostrophes and every other character that is not a letter or
    a digit -> a space; runs of spaces -> one. The result starts and ends with one space, so
    a pattern can look for " word " as well as ``\\b``word``\\b``. An empty text gives " ".
    """
    folded = _fold(text.casefold())
    collapsed = _SPACES.sub(" ", _NON_WORD.sub(" ", folded)).strip()
    return f" {collapsed} " if collapsed else " "


def _script_counts(text: str) -> tuple[int, int, int]:
    """Letters in the Latin script, the Arabic script, and any other script."""
    latin = arabic = other = 0
    for ch in text:
        if not ch.isalpha():
            continue
        code = ord(ch)
        if code < 0x0250 or 0x1E00 <= code <= 0x1EFF or 0xFF21 <= code <= 0xFF5A:
            latin += 1
        elif (0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0x08A0 <= code <= 0x08FF
              or 0xFB50 <= code <= 0xFDFF or 0xFE70 <= code <= 0xFEFF):
            arabic += 1
        else:
            other += 1
    return latin, arabic, other


# --- lexicons --------------------------------------------------------------------------
@dataclass(frozen=True)
class Lexicon:
    """One language's file, compiled."""

    code: str
    name: str
    markers: frozenset[str]
    courtesy: tuple[str, ...]
    urgent: dict[str, tuple[re.Pattern[str], ...]]  # level -> patterns
    exceptions: dict[str, tuple[re.Pattern[str], ...]]  # level -> patterns that cancel a match
    path: Path


def available_languages(directory: Path | None = None) -> tuple[str, ...]:
    """The language codes that have a lexicon file, sorted (``english.yml`` is not one)."""
    folder = LEXICON_DIR if directory is None else directory
    return tuple(sorted(p.stem for p in folder.glob("*.yml") if _CODE.match(p.stem)))


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise LexiconError(f"{where}: expected a list of strings")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            # YAML reads unquoted yes/no/on/off as booleans: "no" must be written 'no'.
            raise LexiconError(f"{where}: {item!r} is not a string (quote it)")
    return [str(v) for v in value]


def _compile(patterns: Iterable[str], where: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for index, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(_fold(pattern)))
        except re.error as error:
            raise LexiconError(f"{where}[{index}]: bad regular expression {pattern!r}: {error}") from None
    return tuple(compiled)


def load_lexicon(path: Path) -> Lexicon:
    """Read and compile one lexicon file. Raises ``LexiconError`` naming the file."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise LexiconError(f"{path}: cannot be read: {error}") from None
    if not isinstance(data, dict):
        raise LexiconError(f"{path}: expected a mapping with keys {sorted(_LEXICON_KEYS)}")
    unknown = set(data) - _LEXICON_KEYS
    if unknown:
        raise LexiconError(f"{path}: unknown keys {sorted(unknown)}")
    for key in ("name", "markers", "emergency", "crisis"):
        if not data.get(key):
            raise LexiconError(f"{path}: '{key}' is missing or empty")
    exceptions = data.get("except") or {}
    if not isinstance(exceptions, dict) or set(exceptions) - set(LEVELS):
        raise LexiconError(f"{path}: 'except' must map {list(LEVELS)} to lists of patterns")
    markers = frozenset(normalise(m).strip() for m in _strings(data["markers"], f"{path}: markers"))
    courtesy = tuple(normalise(c).strip() for c in _strings(data.get("courtesy"), f"{path}: courtesy"))
    return Lexicon(
        code=path.stem,
        name=str(data["name"]),
        markers=frozenset(m for m in markers if m),
        courtesy=tuple(c for c in courtesy if c),
        urgent={lv: _compile(_strings(data[lv], f"{path}: {lv}"), f"{path}: {lv}") for lv in LEVELS},
        exceptions={lv: _compile(_strings(exceptions.get(lv), f"{path}: except.{lv}"), f"{path}: except.{lv}")
                    for lv in LEVELS},
        path=path,
    )


@lru_cache(maxsize=1)
def lexicons() -> dict[str, Lexicon]:
    """Every lexicon in ``bot/safety/languages/``, by code (read once)."""
    return {code: load_lexicon(LEXICON_DIR / f"{code}.yml") for code in available_languages()}


@lru_cache(maxsize=1)
def _courtesy_pattern() -> re.Pattern[str] | None:
    phrases = sorted({c for lex in lexicons().values() for c in lex.courtesy}, key=len, reverse=True)
    if not phrases:
        return None
    return re.compile(" (?:" + "|".join(re.escape(p) for p in phrases) + ")(?= )")


@lru_cache(maxsize=1)
def english_vocabulary() -> frozenset[str]:
    """English words: spaCy's English stop words, the one-word forms of spaCy's English lemma
    table (the table ``bot.nlu.gibberish.english_words`` reads; read here directly, as
    importing that module imports Rasa), and ``english.yml`` (chat shorthand, product and
    medicine names). Table entries with a hyphen or an apostrophe are left out: split, they
    would make "de" (de-escalate) or "la" (la-di-da) English words."""
    import spacy_lookups_data
    import yaml
    from spacy.lang.en.stop_words import STOP_WORDS

    path = Path(spacy_lookups_data.__file__).parent / "data" / "en_lemma_lookup.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        table = json.load(handle)
    try:
        extra = yaml.safe_load(ENGLISH_FILE.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise LexiconError(f"{ENGLISH_FILE}: cannot be read: {error}") from None
    if not isinstance(extra, dict):
        raise LexiconError(f"{ENGLISH_FILE}: expected a mapping with the key 'words'")
    words = _strings(extra.get("words"), f"{ENGLISH_FILE}: words")
    single = (w.lower() for w in (*table.keys(), *table.values()) if w.isalpha())
    stop = (w.replace("'", "").replace("\u2019", "") for w in STOP_WORDS)
    return frozenset((*single, *stop, *(w for entry in words for w in normalise(entry).split())))


@lru_cache(maxsize=1)
def _distinctive_markers() -> dict[str, frozenset[str]]:
    """Each language's markers that are not English words ("est", "und"; not "a", "no")."""
    english = english_vocabulary()
    return {code: frozenset(m for m in lex.markers if m not in english) for code, lex in lexicons().items()}


@lru_cache(maxsize=1)
def _all_markers() -> frozenset[str]:
    return frozenset(m for lex in lexicons().values() for m in lex.markers)


@lru_cache(maxsize=1)
def _identifier() -> Any:
    """py3langid's model (shipped inside the package), limited to English and the
    Latin-script languages that have a lexicon, with probabilities normalised to sum 1."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)
    identifier.set_languages([ENGLISH, *_latin_codes()])
    return identifier


def _latin_codes() -> tuple[str, ...]:
    return tuple(code for code in lexicons() if code != "ar")


def warm_up() -> None:
    """Load everything now rather than on the first message."""
    lexicons()
    english_vocabulary()
    _courtesy_pattern()
    _distinctive_markers()
    _all_markers()
    _identifier()


# --- identification ---------------------------------------------------------------------
def _urgent_matches(normalised: str, lexicon: Lexicon) -> tuple[str, ...]:
    variants = [normalised]
    if _REPEATS.search(normalised):  # "aideeeez", "etoufffe": try one and two of the letter
        variants += [_REPEATS.sub(r"\1", normalised), _REPEATS.sub(r"\1\1", normalised)]
    found = []
    for level in LEVELS:
        for text in variants:
            spans = [m.span() for pattern in lexicon.urgent[level] for m in pattern.finditer(text)]
            if not spans:
                continue
            cancels = [m.span() for p in lexicon.exceptions[level] for m in p.finditer(text)]
            if any(not any(a < end and start < b for a, b in cancels) for start, end in spans):
                found.append(level)
                break
    return tuple(found)


def _english_count(words: Sequence[str], excluded: frozenset[str]) -> int:
    english = english_vocabulary()
    return sum(1 for w in words if w in english and w not in excluded)


def identify(text: str) -> str:
    """"en", a code of ``SUPPORTED``, or "other" (a script that is neither Latin nor Arabic).

    The script with the most letters decides first (a tie goes to Latin): Arabic -> "ar",
    Cyrillic, CJK, Greek, Hebrew, ... -> "other". Text without letters is "en". Latin text
    is foreign only when all of these hold, else it is "en":

    * it has evidence of the language: a marker of it that is not an English word, or one
      of its emergency or crisis phrases (greetings and thanks of any lexicon's
      ``courtesy``, "merci beaucoup", "hola amigo", are left out first);
    * fewer than half of its words are English (a word that is also a marker of the
      language, like "a" or "on" in French, does not count as English);
    * py3langid, over English and the Latin-script lexicons, gives the other languages
      together a probability of at least ``MIN_PROBABILITY``; when an urgent phrase of the
      language matched, ``MIN_PROBABILITY_URGENT``, or none at all if not one word is
      English (missing a foreign emergency costs more, and py3langid is unsure on a few
      words).

    Of the languages with evidence, the one with the most (markers found, plus two for each
    urgent level matched) plus twice py3langid's probability for it is chosen. Only the first
    ``MAX_CHARS_FOR_MODEL`` characters are read.
    """
    latin, arabic, other = _script_counts(text)
    if latin + arabic + other == 0:
        return ENGLISH
    if arabic > latin and arabic >= other:
        return "ar" if "ar" in lexicons() else OTHER
    if other > latin:
        return OTHER
    head = text[:MAX_CHARS_FOR_MODEL]
    normalised = normalise(head)
    courtesy = _courtesy_pattern()
    content = courtesy.sub(" ", normalised) if courtesy else normalised
    words = _WORD.findall(content)
    if not words:
        return ENGLISH
    if _english_count(words, _all_markers()) * 2 >= len(words):
        return ENGLISH  # mostly English words, whichever language it could be
    word_set = set(words)
    distinctive = _distinctive_markers()
    found = {code: len(word_set & distinctive[code]) for code in _latin_codes()}
    probabilities = dict(_identifier().rank(head.lower()))
    evidence: dict[str, float] = {}
    urgent_in: set[str] = set()
    for code in _latin_codes():
        # Urgent phrases are looked for only where there is some sign of the language.
        urgent: tuple[str, ...] = ()
        if found[code] or probabilities.get(code, 0.0) >= MIN_PROBABILITY_TO_LOOK:
            urgent = _urgent_matches(normalised, lexicons()[code])
        if found[code] or urgent:
            evidence[code] = found[code] + 2 * len(urgent)
        if urgent:
            urgent_in.add(code)
    if not evidence:
        return ENGLISH
    best = max(evidence, key=lambda code: evidence[code] + 2 * probabilities.get(code, 0.0))
    english_words = _english_count(words, lexicons()[best].markers)
    if english_words * 2 >= len(words):
        return ENGLISH
    foreign = 1.0 - probabilities.get(ENGLISH, 0.0)
    if best in urgent_in:
        # An urgent phrase of that language in a message without one English word is
        # trusted even where py3langid is unsure (short texts: "je narrive pas a respirer").
        if foreign < MIN_PROBABILITY_URGENT and english_words:
            return ENGLISH
    elif foreign < MIN_PROBABILITY:
        return ENGLISH
    return best


# --- urgent statements ------------------------------------------------------------------
def detect_urgent(text: str, language: str) -> tuple[str, ...]:
    """The levels ("emergency", "crisis") whose patterns in ``language``'s lexicon match the
    text, most severe first; () when none does or the language has no lexicon.

    A pattern matches the normalised text (``normalise``) or the same text with a letter
    typed three or more times cut to one or to two ("aidezzzz" -> "aidez", "etoufffe" ->
    "etouffe"). A match is cancelled when a pattern of that level's ``except`` list matches a
    span that overlaps it. The whole text is read (``identify`` reads only its start).
    """
    lexicon = lexicons().get(language)
    if lexicon is None:
        return ()
    return _urgent_matches(normalise(text), lexicon)


def first_level(levels: Sequence[str]) -> str | None:
    """The most severe level of ``levels`` (``contract.levels``), or None when there is none."""
    ranked = [level for level in LEVELS if level in levels]
    return ranked[0] if ranked else None
