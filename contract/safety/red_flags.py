"""Red flags in free text, by rule: the layer a low NLU confidence cannot out-vote.

The rules live in ``contract/safety/red_flags.json`` (the folder's README explains the
format). Pure Python: the bot runs it in Rasa's NLU and the API runs it when the bot cannot
answer (the safety net). In short:
named *concepts* are lists of terms; a *flag* fires when all concepts of one of its
patterns occur in one sentence, each within ``window`` words of the first (the anchor);
a negation just before a matched concept ("no fever", "never fainted") cancels it,
except for crisis; a sentence that only asks in general ("can it cause hives?") is a
mention, not a report, except for crisis; so is a sentence whose context says the words
report nothing to act on (a figure of speech, an episode long over, an eligibility question:
the file's ``contexts``).

Usage::

    from contract.safety.red_flags import detect
    detect("my lips are swelling").level        # "emergency"
    detect("is swelling a side effect?")        # level None, mention_only True

Nothing is read at import; ``load_rules()`` reads and compiles the file once (cached).
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

from contract.levels import LEVELS, most_severe
from contract.safety.edits import edit_distance, typo_limit

_HERE = Path(__file__).resolve().parent
RULES_FILE: Path = _HERE / "red_flags.json"
ENGLISH_WORDS_FILE: Path = _HERE / "english_words.txt.gz"
DEFAULT_WINDOW = 6
NEGATION_REACH = 3  # a negator counts when at most this many words before the concept

_APOSTROPHES = re.compile(r"['\u2019\u2018`\u00b4]")
_SENTENCE_END = re.compile(r"[!?;\n\r]+|(?<!\d)\.|\.(?!\d)")
_CLAUSE_BREAK = re.compile(r"[,:\u2013\u2014()\[\]]|\s-\s|\.\.+")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_REPEATS = re.compile(r"([a-z])\1{2,}")
# A negation carries over a list: "no fever or pus", "dont have any swelling or trouble breathing".
_LIST_WORDS = frozenset({"or", "nor", "and", "any", "a", "an", "some", "no", "other"})
_NEGATED_VERBS = frozenset({"have", "had", "got", "get", "getting", "feel", "felt", "see", "seen", "notice",
                            "noticed", "think", "experience", "experienced", "seem", "show", "showing"})
_CLAUSE_WORDS = frozenset({"but", "though", "tho", "although", "however", "except", "yet", "whereas"})
# An if/when clause: a state phrase inside one is hypothetical ("what if my lips swell").
# "not sure if", "wondering if" and the like are hedges, not conditions.
_CONDITIONAL = re.compile(
    r"(?<!not sure )(?<!dont know )(?<!wonder )(?<!wondering )(?<!no idea )(?<!unsure )(?<!ask )(?<!see )"
    r"\b(if|when|whenever|in case|suppose|supposing|whether|imagine|assuming|hypothetically)\b"
    r"|(^|, |\blets |\bjust )say\b"
)


# --- compiled rules ---------------------------------------------------------------------
ANY_WORD = "_"

@dataclass(frozen=True)
class Term:
    """A sequence of words; a word ending in "*" matches any word starting with it, and a
    lone "_" (not first) matches any one word ("die when _ saw _ bill")."""

    words: tuple[tuple[str, bool], ...]  # (word or stem, is_prefix); ("", True) is any word

    @classmethod
    def parse(cls, text: str) -> "Term":
        words: list[tuple[str, bool]] = []
        for raw in text.split():
            if raw == ANY_WORD:
                if not words:
                    raise ValueError(f"a term cannot start with {ANY_WORD!r}: {text!r}")
                words.append(("", True))
                continue
            pieces = normalise_words(raw)
            words.extend((p, False) for p in pieces[:-1])
            if pieces:
                words.append((pieces[-1], raw.endswith("*")))
        if not words:
            raise ValueError(f"empty term: {text!r}")
        return cls(tuple(words))


@dataclass(frozen=True)
class Pattern:
    concepts: tuple[str, ...]  # the first is the anchor
    window: int


@dataclass(frozen=True)
class Flag:
    id: str
    level: str
    patterns: tuple[Pattern, ...]
    negatable: bool = True
    question_frames: bool = True
    exceptions: tuple[Term, ...] = ()


@dataclass(frozen=True)
class ContextFrame:
    """Sentences where some flags' words are no report: a figure of speech, a past episode
    that is over, a question about eligibility or someone else's unrelated illness.

    A finding of one of ``flags`` (or of a flag at one of ``levels``) is a mention when one
    of ``patterns`` matches (the sentence, or with ``message: true`` any sentence of the
    message) and none of ``unless`` matches anywhere in the message.
    """

    name: str
    patterns: tuple[re.Pattern[str], ...]
    unless: tuple[re.Pattern[str], ...] = ()
    flags: frozenset[str] = frozenset()
    levels: frozenset[str] = frozenset()
    message: bool = False

    def applies_to(self, flag: "Flag") -> bool:
        return flag.id in self.flags or flag.level in self.levels


@dataclass(frozen=True)
class RedFlagRules:
    """The compiled rule file: concepts, flags, negators, frames, aliases."""

    concepts: Mapping[str, tuple[Term, ...]]
    flags: tuple[Flag, ...]
    negators: frozenset[str]
    hedges: tuple[Term, ...]
    aliases: Mapping[str, tuple[str, ...]]
    general: tuple[re.Pattern[str], ...]
    present: tuple[re.Pattern[str], ...]
    state: tuple[re.Pattern[str], ...]
    symptom_concepts: frozenset[str]  # concepts that make a general question a mention
    lexicon: frozenset[str]  # whole words of all terms (typo targets)
    stems: tuple[str, ...]  # prefix stems of all terms (typo targets)
    known: frozenset[str] = frozenset()  # never typos (product names, chat words)
    contexts: tuple[ContextFrame, ...] = ()  # figures of speech, past episodes, eligibility
    # Every term (of concepts, exceptions and hedges) by its first word, for one pass per sentence.
    index: Mapping[str, tuple[tuple[str, Term], ...]] = field(default_factory=dict)
    prefix_index: Mapping[str, tuple[tuple[str, str, Term], ...]] = field(default_factory=dict)

    def correct(self, token: str) -> tuple[str, ...]:
        """The lexicon words a token may be a typo of (empty for known words)."""
        return _corrections(self, token)


@dataclass(frozen=True)
class Finding:
    flag: str
    level: str
    words: tuple[str, ...]  # the words that matched, as written (normalised)
    mention: bool = False  # only inside a general question: not a report


@dataclass(frozen=True)
class Detection:
    level: str | None
    flags: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    # Symptom words only inside general questions ("is swelling a side effect?"): no alarm.
    mention_only: bool = False
    # Symptom words only under a negation ("no fever or anything"): the rules say no.
    negated: bool = False
    # Crisis words with no crisis found, because the rules read them in another sense (a
    # figure of speech about a bill, hair dye): the classifier's own crisis is weighed
    # against this (bot.nlu.safety).
    crisis_other_sense: bool = False

    def __bool__(self) -> bool:
        return self.level is not None


NO_DETECTION = Detection(level=None, flags=())


# --- normalising ------------------------------------------------------------------------
def _collapse(word: str) -> str:
    """"sooooo" -> "soo", "helppp" -> "help" when the single letter makes a word."""
    if not _REPEATS.search(word):
        return word
    double = _REPEATS.sub(r"\1\1", word)
    single = _REPEATS.sub(r"\1", word)
    return single if single in _english() and double not in _english() else double


def normalise_words(text: str) -> list[str]:
    """Lower case, apostrophes dropped, other non-alphanumerics as spaces, repeats collapsed."""
    text = _APOSTROPHES.sub("", text.lower())
    return [_collapse(w) for w in _NON_WORD.sub(" ", text).split()]


def sentences(text: str) -> list[str]:
    """Split on . ! ? ; and line breaks (a dot between digits, as in 38.5, stays)."""
    return [s for s in _SENTENCE_END.split(text) if s and s.strip()]


@dataclass
class _Sentence:
    tokens: list[str]
    clause: list[int]  # clause number of each token (commas, "but" ... start a new one)
    forms: list[frozenset[str]]  # each token and the words it may be a typo of
    text: str  # tokens joined by single spaces

    def clause_start(self, index: int) -> int:
        start = index
        while start > 0 and self.clause[start - 1] == self.clause[index]:
            start -= 1
        return start


def _prepare(raw: str, rules: RedFlagRules) -> _Sentence:
    tokens: list[str] = []
    clause: list[int] = []
    number = 0
    for part in _CLAUSE_BREAK.split(raw):
        number += 1
        for word in normalise_words(part):
            if word in _CLAUSE_WORDS:
                number += 1
            for piece in rules.aliases.get(word, (word,)):
                tokens.append(piece)
                clause.append(number)
    forms = [frozenset((t, *rules.correct(t))) for t in tokens]
    pieces: list[str] = []
    for i, token in enumerate(tokens):
        if i and clause[i] != clause[i - 1]:
            pieces.append(",")
        pieces.append(token)
    return _Sentence(tokens, clause, forms, " ".join(pieces))


# --- typo tolerance ---------------------------------------------------------------------
@lru_cache(maxsize=1)
def _english() -> frozenset[str]:
    """English words, never read as typos: spaCy's lemma table plus its stop words (the lemma
    table lacks some, e.g. "some", which is one edit from "sore"), one per line in
    ``english_words.txt.gz`` (``python -m bot.safety.english_words`` writes it)."""
    with gzip.open(ENGLISH_WORDS_FILE, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip() for line in handle if line.strip())


@lru_cache(maxsize=20000)
def _corrections_cached(rules_id: int, token: str) -> tuple[str, ...]:
    rules = _RULES_BY_ID[rules_id]
    if len(token) < 4 or token.isdigit() or token in rules.lexicon or token in rules.known or token in _english():
        return ()
    limit = typo_limit(token)
    found = [
        word for word in rules.lexicon
        if len(word) >= 4 and word[0] == token[0] and abs(len(word) - len(token)) <= limit
        and edit_distance(token, word, limit) <= limit
    ]
    for stem in rules.stems:
        if len(stem) < 4 or stem[0] != token[0] or token.startswith(stem):
            continue
        stem_limit = typo_limit(stem)
        if any(edit_distance(token[:n], stem, stem_limit) <= stem_limit
               for n in range(len(stem) - stem_limit, min(len(token), len(stem) + stem_limit) + 1)):
            found.append(stem + "~")  # marks a typo of a stem: matches the stem's terms
    return tuple(found)


_RULES_BY_ID: dict[int, RedFlagRules] = {}


def _corrections(rules: RedFlagRules, token: str) -> tuple[str, ...]:
    _RULES_BY_ID.setdefault(id(rules), rules)
    return _corrections_cached(id(rules), token)


# --- loading ----------------------------------------------------------------------------
def _pattern(spec: Any) -> Pattern:
    if isinstance(spec, Mapping):
        return Pattern(tuple(spec["all"]), int(spec.get("window", DEFAULT_WINDOW)))
    return Pattern(tuple(spec), DEFAULT_WINDOW)


def _compile(data: Mapping[str, Any]) -> RedFlagRules:
    concepts = {name: tuple(Term.parse(str(t)) for t in terms) for name, terms in data["concepts"].items()}
    flags = []
    for spec in data["flags"]:
        if spec["level"] not in LEVELS:
            raise ValueError(f"flag {spec['id']}: unknown level {spec['level']!r}")
        patterns = tuple(_pattern(p) for p in spec["patterns"])
        for pattern in patterns:
            missing = [c for c in pattern.concepts if c not in concepts]
            if missing:
                raise ValueError(f"flag {spec['id']}: unknown concepts {missing}")
        flags.append(Flag(
            id=spec["id"], level=spec["level"], patterns=patterns,
            negatable=bool(spec.get("negatable", True)),
            question_frames=bool(spec.get("question_frames", True)),
            exceptions=tuple(Term.parse(str(t)) for t in spec.get("except", ())),
        ))
    frames = data.get("frames", {})
    words = {w for terms in concepts.values() for term in terms for w, prefix in term.words if not prefix}
    known = frozenset(str(w) for w in data.get("known_words", ()))
    stems = sorted({w for terms in concepts.values() for term in terms for w, prefix in term.words if prefix})
    aliases = {str(k): tuple(normalise_words(str(v))) for k, v in (data.get("aliases") or {}).items()}
    hedges = tuple(Term.parse(str(t)) for t in data.get("hedges", ()))
    keyed: list[tuple[str, Term]] = [(name, t) for name, terms in concepts.items() for t in terms]
    keyed += [(_except_key(f.id), t) for f in flags for t in f.exceptions]
    keyed += [(_HEDGES, t) for t in hedges]
    index: dict[str, list[tuple[str, Term]]] = {}
    prefix_index: dict[str, list[tuple[str, str, Term]]] = {}
    for key, term in keyed:
        word, prefix = term.words[0]
        if prefix:
            prefix_index.setdefault(word[:1], []).append((word, key, term))
        else:
            index.setdefault(word, []).append((key, term))
    contexts = tuple(
        ContextFrame(
            name=str(name),
            patterns=tuple(re.compile(p) for p in spec.get("patterns", ())),
            unless=tuple(re.compile(p) for p in spec.get("unless", ())),
            flags=frozenset(str(f) for f in spec.get("flags", ())),
            levels=frozenset(str(lv) for lv in spec.get("levels", ())),
            message=bool(spec.get("message", False)),
        )
        for name, spec in (data.get("contexts") or {}).items()
    )
    for frame in contexts:
        if "crisis" in frame.levels or any(f.level == "crisis" for f in flags if f.id in frame.flags):
            raise ValueError(f"context {frame.name}: crisis is never a mention")
    symptom_concepts = {p.concepts[0] for f in flags if f.question_frames for p in f.patterns}
    symptom_concepts |= set(data.get("mention_concepts", ()))
    return RedFlagRules(
        concepts=concepts,
        symptom_concepts=frozenset(symptom_concepts),
        flags=tuple(flags),
        negators=frozenset(str(w) for w in data.get("negators", ())),
        hedges=hedges,
        aliases=aliases,
        general=tuple(re.compile(p) for p in frames.get("general", ())),
        present=tuple(re.compile(p) for p in frames.get("present", ())),
        state=tuple(re.compile(p) for p in frames.get("state", ())),
        lexicon=frozenset(words),
        known=known,
        contexts=contexts,
        stems=tuple(stems),
        index={k: tuple(v) for k, v in index.items()},
        prefix_index={k: tuple(v) for k, v in prefix_index.items()},
    )


_HEDGES = "!hedges"


def _except_key(flag_id: str) -> str:
    return "!except:" + flag_id


@lru_cache(maxsize=4)
def _load(path: Path) -> RedFlagRules:
    return _compile(json.loads(path.read_text(encoding="utf-8")))


def load_rules(path: Path | None = None) -> RedFlagRules:
    """The compiled rules of ``path`` (default: contract/safety/red_flags.json), read once."""
    return _load(Path(path or RULES_FILE).resolve())


# --- matching ---------------------------------------------------------------------------
Span = tuple[int, int]  # token positions [start, end)


def _word_matches(forms: frozenset[str], word: str, prefix: bool) -> bool:
    if prefix:
        return any(f.startswith(word) or f == word + "~" for f in forms)
    return word in forms


def _matches_at(sentence: _Sentence, term: Term, start: int) -> bool:
    words = term.words
    if start + len(words) > len(sentence.tokens):
        return False
    return all(_word_matches(sentence.forms[start + k], w, p) for k, (w, p) in enumerate(words) if k)


def _all_spans(sentence: _Sentence, rules: RedFlagRules) -> dict[str, list[Span]]:
    """The spans of every concept (and exception and hedge list) in the sentence, in one pass."""
    found: dict[str, set[Span]] = {}
    for start, forms in enumerate(sentence.forms):
        candidates: list[tuple[str, Term]] = [kt for f in forms for kt in rules.index.get(f, ())]
        for initial in {f[:1] for f in forms}:
            for stem, key, term in rules.prefix_index.get(initial, ()):
                if _word_matches(forms, stem, True):
                    candidates.append((key, term))
        for key, term in candidates:
            if _matches_at(sentence, term, start):
                found.setdefault(key, set()).add((start, start + len(term.words)))
    return {key: sorted(spans) for key, spans in found.items()}


def _distance(a: Span, b: Span) -> int:
    if b[0] >= a[1]:
        return b[0] - a[1] + 1
    if a[0] >= b[1]:
        return a[0] - b[1] + 1
    return 0


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class _Matcher:
    """Matches the flags of one sentence, caching each concept's spans."""

    def __init__(self, sentence: _Sentence, rules: RedFlagRules) -> None:
        self.sentence = sentence
        self.rules = rules
        self._spans = _all_spans(sentence, rules)
        self._hedged = {i for span in self._spans.get(_HEDGES, ()) for i in range(*span)}
        # Every token of a matched symptom term (a list of symptoms under one negation).
        self._symptoms = {i for key, spans in self._spans.items() if not key.startswith("!")
                          for span in spans for i in range(*span)}

    def spans(self, concept: str) -> list[Span]:
        return self._spans.get(concept, [])

    def negated(self, span: Span, covered: set[int]) -> bool:
        """A negator within reach before the span, in its clause, not part of a matched term;
        or one further back whose list runs on to it ("i dont have a fever or any pus")."""
        start = self.sentence.clause_start(span[0])
        first = max(start, span[0] - NEGATION_REACH)
        tokens = self.sentence.tokens

        def negator(i: int) -> bool:
            return tokens[i] in self.rules.negators and i not in covered and i not in self._hedged

        if any(negator(i) for i in range(first, span[0])):
            return True
        for i in range(span[0] - 1, start - 1, -1):
            if negator(i):
                between = range(i + 1, span[0])
                return any(tokens[j] in _LIST_WORDS for j in between) and all(
                    j in covered or j in self._symptoms or tokens[j] in _LIST_WORDS or tokens[j] in _NEGATED_VERBS
                    for j in between)
        return False

    def any_negated(self, concepts: frozenset[str]) -> bool:
        """Whether a span of one of these concepts stands under a negation."""
        covered = {i for key, spans in self._spans.items() if not key.startswith("!")
                   for span in spans for i in range(*span)}
        return any(self.negated(span, covered) for c in concepts for span in self.spans(c))

    def excepted(self, flag: Flag) -> bool:
        """Whether the flag's words are all here but one of them is read in another sense
        (an exception overlaps it: "wanted to die when she saw her bill")."""
        excluded = self.spans(_except_key(flag.id))
        if not excluded:
            return False
        for pattern in flag.patterns:
            per_concept = [self.spans(c) for c in pattern.concepts]
            if all(per_concept) and any(_overlaps(span, e) for spans in per_concept for span in spans
                                        for e in excluded):
                return True
        return False

    def match(self, flag: Flag) -> list[Span] | None:
        for pattern in flag.patterns:
            found = self._match_pattern(flag, pattern)
            if found:
                return found
        return None

    def _match_pattern(self, flag: Flag, pattern: Pattern) -> list[Span] | None:
        per_concept = [self.spans(c) for c in pattern.concepts]
        if not all(per_concept):
            return None
        covered = {i for spans in per_concept for span in spans for i in range(*span)}
        excluded = self.spans(_except_key(flag.id))

        def usable(span: Span) -> bool:
            if any(_overlaps(span, e) for e in excluded):
                return False
            return not (flag.negatable and self.negated(span, covered))

        for anchor in per_concept[0]:
            if not usable(anchor):
                continue
            chosen = [anchor]
            for spans in per_concept[1:]:
                partner = next((s for s in spans if _distance(anchor, s) <= pattern.window
                                and not any(_overlaps(s, c) for c in chosen) and usable(s)), None)
                if partner is None:
                    break
                chosen.append(partner)
            else:
                return chosen
        return None


def _in_state(sentence: str, pattern: re.Pattern[str]) -> bool:
    """A personal-state phrase ("my lips are", "i have") outside an if/when clause."""
    for match in pattern.finditer(sentence):
        clause = sentence[: match.start()].rsplit(",", 1)[-1]
        if not _CONDITIONAL.search(clause):
            return True
    return False


def is_general_question(sentence_text: str, rules: RedFlagRules) -> bool:
    """True when the (normalised) sentence asks in general and reports no present state."""
    if not any(p.search(sentence_text) for p in rules.general):
        return False
    if any(p.search(sentence_text) for p in rules.present):
        return False
    return not any(_in_state(sentence_text, p) for p in rules.state)


def _frame_covers(frame: ContextFrame, scope: Sequence[str], message_texts: Sequence[str]) -> bool:
    """A pattern of the frame in ``scope`` and none of its ``unless`` in the message."""
    return (any(p.search(t) for p in frame.patterns for t in scope)
            and not any(p.search(t) for p in frame.unless for t in message_texts))


def _context_mention(flag: Flag, sentence_text: str, message_texts: Sequence[str],
                     rules: RedFlagRules) -> bool:
    """Whether a context frame makes this flag's finding in this sentence a mention."""
    return flag.question_frames and any(
        _frame_covers(frame, message_texts if frame.message else (sentence_text,), message_texts)
        for frame in rules.contexts if frame.applies_to(flag)
    )


def in_context(text: str, level: str, rules: RedFlagRules | None = None) -> bool:
    """Whether a context frame for ``level`` (an episode that is over, someone else's past
    reaction, an eligibility question) says that ``text`` reports nothing to act on now.

    For a level found without a rule (the classifier's): frames that name flags only, and
    crisis, never apply.
    """
    rules = rules or load_rules()
    if level == "crisis":
        return False
    texts = [s.text for s in (_prepare(raw, rules) for raw in sentences(text)) if s.tokens]
    return any(_frame_covers(frame, texts, texts) for frame in rules.contexts if level in frame.levels)


def detect(text: str, rules: RedFlagRules | None = None) -> Detection:
    """Every red flag the text reports; ``level`` is the most severe one (or None)."""
    rules = rules or load_rules()
    if not text or not text.strip():
        return NO_DETECTION
    findings: list[Finding] = []
    mentioned = False
    negated = False
    other_sense = False
    prepared = [s for s in (_prepare(raw, rules) for raw in sentences(text)) if s.tokens]
    message_texts = [s.text for s in prepared]
    for sentence in prepared:
        matcher = _Matcher(sentence, rules)
        general: bool | None = None
        found_here = False
        for flag in rules.flags:
            spans = matcher.match(flag)
            if not spans:
                other_sense = other_sense or (flag.level == "crisis" and matcher.excepted(flag))
                continue
            mention = False
            if flag.question_frames:
                if general is None:
                    general = is_general_question(sentence.text, rules)
                mention = general or _context_mention(flag, sentence.text, message_texts, rules)
            words = tuple(w for span in spans for w in sentence.tokens[span[0]:span[1]])
            findings.append(Finding(flag.id, flag.level, words, mention))
            found_here = True
        if not found_here and any(matcher.spans(c) for c in rules.symptom_concepts):
            # Symptom words without a flag: in a general question they are a mention too.
            mentioned = mentioned or is_general_question(sentence.text, rules)
            negated = negated or matcher.any_negated(rules.symptom_concepts)
    active = [f for f in findings if not f.mention]
    flags = tuple(dict.fromkeys(f.flag for f in active))
    level = most_severe(*(f.level for f in active))
    return Detection(
        level=level,
        flags=flags,
        findings=tuple(findings),
        mention_only=not active and (bool(findings) or mentioned),
        negated=not active and negated,
        crisis_other_sense=other_sense and all(f.level != "crisis" for f in findings),
    )
