"""Choose the knowledge entry that answers a message.

The choice combines three signals:

* the words of the message (BM25 over the entries, after spaCy normalisation, with
  unknown words corrected to the nearest word the index knows),
* the intent ranking from Rasa's NLU, mapped to topics,
* the sentence similarity of the message to each entry's question forms
  (bot.kb.semantic), when the semantic index was built,
* the conversation: an elliptical follow-up ("and how long do they last?") borrows the
  words of the previous question.

It never guesses: when neither words nor intent point clearly at an entry, the result
is marked not confident and carries the nearest topics to offer instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from bot.kb.index import BM25Index
from bot.kb.model import Entry, KnowledgeBase
from bot.kb.semantic import Encoder, SemanticIndex
from contract.safety.edits import edit_distance, typo_limit
from bot.nlp.pipeline import Normaliser

_FOLLOW_UP_START = re.compile(
    r"^\s*(and|but|so|also|what about|how about|plus|then|ok and|okay and|n"
    r"|the (\w+ )?one|that one|which one|which of (those|these|them))\b", re.IGNORECASE
)
_PRONOUN = re.compile(r"\b(it|its|they|them|those|these|that|this|there|one)\b", re.IGNORECASE)
# Words that point back at what was just said: "is that permanent?", "which of those hurts
# least?", "and the gun one?". A short follow-up with one of them leans on the previous answer.
_POINTING = re.compile(r"\b(that|those|these|them|it|its|the (\w+ )?one|which one|which of|this one|either)\b",
                       re.IGNORECASE)
_IGNORED_ENTITIES = {"mesotherapy"}

# Weights of the signals; tuned on the training questions, not on the eval set.
W_LEXICAL = 0.5
W_INTENT = 0.5
# With sentence similarity to the entries' question forms (bot.kb.semantic) the three
# signals share the weight instead.
W_LEXICAL_WITH_SEMANTIC = 0.3
W_INTENT_WITH_SEMANTIC = 0.4
W_SEMANTIC = 0.3
# A message this close to an entry's question form may be answered on that alone.
STRONG_SEMANTIC = 0.6
FOLLOW_UP_CONTEXT_WEIGHT = 0.6
OVERVIEW_PRIOR = 0.04
RELATED_BONUS = 0.06
SAME_TOPIC_BONUS = 0.1
# A follow-up that points back: the previous answer's topic counts more, the classifier's
# reading of the short message alone (which cannot see what "that" is) less.
POINTING_SAME_TOPIC_BONUS = 0.3
POINTING_INTENT_SCALE = 0.6
# ...unless the classifier is all but certain: "any studies on it?" asks about the evidence.
POINTING_CERTAIN_INTENT = 0.95
# A pointing follow-up answered within what was just said (the previous entry's topic or its
# related entries) is trusted from this score: it has resolved what "that" is.
POINTING_MIN_CONFIDENCE = 0.25
MIN_CONFIDENCE = 0.34
# A message whose content words are mostly unknown to the knowledge base is probably
# about something else ("what's the bitcoin price today"), whatever the intent says.
MAX_UNKNOWN_SHARE = 0.6
STRONG_INTENT = 0.85
# The best entry must beat the best entry of any other topic by this much, unless the
# intent classifier backs it: otherwise it is a guess between topics.
MIN_MARGIN = 0.05
BACKED_INTENT = 0.5


@dataclass(frozen=True)
class Match:
    entry: Entry
    score: float
    lexical: float
    intent: float
    semantic: float = 0.0


@dataclass(frozen=True)
class Retrieval:
    """The outcome of a search: the best match, whether to trust it, and nearby topics."""

    best: Match | None
    confident: bool
    nearest: tuple[Entry, ...] = field(default_factory=tuple)
    follow_up: bool = False
    # A follow-up that points back ("what if it's flaring right now?") answered confidently
    # within what was just said: the previous entry's topic or its related entries.
    resolved: bool = False

    @property
    def confidence(self) -> float:
        return self.best.score if self.best else 0.0


SCORED_TEXTS_KEPT = 64
"""Texts whose classifier scores the retriever keeps (a turn has a message and its pieces;
requests from several patients may interleave)."""


class Retriever:
    def __init__(self, kb: KnowledgeBase, index: BM25Index, normaliser: Normaliser,
                 semantic: SemanticIndex | None = None, encoder: Encoder | None = None) -> None:
        self._kb = kb
        self._index = index
        self._normaliser = normaliser
        if (semantic is None) != (encoder is None):
            raise ValueError("a semantic index needs an encoder, and the other way round")
        self._semantic = semantic
        self._encoder = encoder
        # Entry scores of recent texts, as Rasa's classifier scored them (take_scores).
        self._scored: dict[str, dict[str, float]] = {}
        self._by_initial: dict[str, list[str]] = {}
        for word in sorted(index.vocabulary):
            self._by_initial.setdefault(word[0], []).append(word)
        self._topic_of_intent = {t.intent: t.id for t in kb.topics.values()}

    # -- query analysis -------------------------------------------------------------
    def _correct(self, term: str) -> str | None:
        """``term`` if the index knows it, else the closest known word within a typo's reach.

        A typo keeps the first letter and is one edit away (two for words of seven
        letters or more); ties go to the more frequent word (lower idf).
        """
        if term in self._index.idf:
            return term
        if len(term) < 4 or term.isdigit():
            return None
        limit = typo_limit(term)
        best: tuple[int, float, str] | None = None
        for word in self._by_initial.get(term[0], ()):
            if abs(len(word) - len(term)) > limit:
                continue
            distance = edit_distance(term, word, limit)
            if distance <= limit:
                candidate = (distance, self._index.idf[word], word)
                if best is None or candidate < best:
                    best = candidate
        return best[2] if best else None

    def query_terms(self, text: str) -> dict[str, float]:
        """Weighted index terms for ``text`` (unknown words corrected or dropped)."""
        return self._analyse_query(text)[0]

    def _analyse_query(self, text: str) -> tuple[dict[str, float], int]:
        """Weighted index terms, and how many content words the index does not know."""
        analysis = self._normaliser.analyse(text)
        weights: dict[str, float] = {}
        unknown = 0
        for term in analysis.terms:
            known = self._correct(term)
            if known:
                weights[known] = max(weights.get(known, 0.0), 1.0)
            elif not term.isdigit():
                unknown += 1
        for _, canonical in analysis.entities:
            if canonical not in _IGNORED_ENTITIES and canonical in self._index.idf:
                weights[canonical] = 1.0
        return weights, unknown

    @staticmethod
    def is_follow_up(text: str, terms: dict[str, float]) -> bool:
        """Short messages that lean on what came before."""
        if len(terms) > 4:
            return False
        return bool(_FOLLOW_UP_START.search(text)) or (
            len(terms) <= 3 and bool(_PRONOUN.search(text))
        )

    # -- scoring --------------------------------------------------------------------
    def _lexical(self, query: dict[str, float]) -> dict[str, float]:
        """Per entry: share of the query's weight it matches, scaled by relative BM25."""
        if not query:
            return {doc: 0.0 for doc in self._index.doc_ids}
        bm25 = self._index.scores(query)
        top = max(bm25.values()) or 1.0
        total = sum(self._index.idf[t] * w for t, w in query.items()) or 1.0
        out: dict[str, float] = {}
        for doc_id, tf in zip(self._index.doc_ids, self._index.term_freqs):
            covered = sum(self._index.idf[t] * w for t, w in query.items() if t in tf) / total
            out[doc_id] = covered * (0.5 + 0.5 * bm25[doc_id] / top)
        return out

    def prepare(self, texts: Sequence[str]) -> None:
        """Encode texts about to be searched in one batch (a message's questions, the message
        whole), when the encoder keeps what it encoded recently (bot.nlp.encoder.RecentEncodings)."""
        prepare = getattr(self._encoder, "prepare", None)
        if prepare is not None and self._semantic is not None:
            prepare([t for t in texts if t.strip() and t not in self._scored])

    def take_scores(self, packed: object) -> int:
        """Keep the entry scores Rasa's classifier packed into a message's parse data
        (``SIMILARITIES_KEY``, :meth:`SemanticIndex.pack`) for the message and its pieces:
        searching those texts then encodes nothing. Scores packed against another index
        are ignored (those texts are encoded here). Returns how many texts were taken."""
        if self._semantic is None:
            return 0
        taken = self._semantic.unpack(packed)
        for text, scores in taken.items():
            self._scored.pop(text, None)
            self._scored[text] = scores
        while len(self._scored) > SCORED_TEXTS_KEPT:
            self._scored.pop(next(iter(self._scored)))
        return len(taken)

    def _similarities(self, text: str) -> Mapping[str, float] | None:
        if self._semantic is None or self._encoder is None:
            return None
        scored = self._scored.get(text)
        if scored is not None:
            return scored
        return self._semantic.similarities(text, self._encoder)

    def _intent_by_topic(self, ranking: Iterable[tuple[str, float]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for intent, conf in ranking:
            topic = self._topic_of_intent.get(intent)
            if topic:
                out[topic] = max(out.get(topic, 0.0), float(conf))
        return out

    def search(
        self,
        text: str,
        intent_ranking: Sequence[tuple[str, float]] = (),
        previous_text: str | None = None,
        previous_entry: str | None = None,
    ) -> Retrieval:
        """Rank the entries for ``text``; the previous turn helps with follow-ups."""
        query, unknown = self._analyse_query(text)
        unknown_share = unknown / (unknown + len(query)) if (unknown + len(query)) else 0.0
        follow_up = bool(previous_text) and self.is_follow_up(text, query)
        if follow_up and previous_text:
            for term, weight in self.query_terms(previous_text).items():
                if term not in query:
                    query[term] = weight * FOLLOW_UP_CONTEXT_WEIGHT
        lexical = self._lexical(query)
        semantic = self._similarities(text)
        by_topic = self._intent_by_topic(intent_ranking)
        previous = self._kb.entries.get(previous_entry) if previous_entry else None
        related = set(previous.related) if previous else set()
        pointing = (follow_up and previous is not None and bool(_POINTING.search(text))
                    and max(by_topic.values(), default=0.0) < POINTING_CERTAIN_INTENT)
        if pointing and semantic is not None and previous_text:
            # "is that permanent?" means nothing alone: read it after the question it follows.
            together = self._similarities(f"{previous_text} {text}") or {}
            semantic = {k: (v + together.get(k, v)) / 2 for k, v in semantic.items()}
        same_topic_bonus = POINTING_SAME_TOPIC_BONUS if pointing else SAME_TOPIC_BONUS
        intent_scale = POINTING_INTENT_SCALE if pointing else 1.0

        matches: list[Match] = []
        for entry in self._kb.entries.values():
            lex = lexical.get(entry.id, 0.0)
            intent = by_topic.get(entry.topic, 0.0)
            weighed = intent * intent_scale
            if semantic is None:
                sem = 0.0
                score = W_LEXICAL * lex + W_INTENT * weighed
            else:
                sem = semantic.get(entry.id, 0.0)
                score = (W_LEXICAL_WITH_SEMANTIC * lex + W_INTENT_WITH_SEMANTIC * weighed
                         + W_SEMANTIC * sem)
            if entry.position == 0:
                score += OVERVIEW_PRIOR * max(intent, lex)
            if follow_up and entry.id in related:
                score += RELATED_BONUS
            if follow_up and previous and entry.topic == previous.topic:
                score += same_topic_bonus
            matches.append(Match(entry, score, lex, intent, sem))
        matches.sort(key=lambda m: (-m.score, m.entry.position, m.entry.id))
        best = matches[0] if matches else None
        confident = bool(best) and best.score >= MIN_CONFIDENCE and (
            best.intent >= 0.3 or best.lexical >= 0.5 or best.semantic >= STRONG_SEMANTIC
        ) and (unknown_share <= MAX_UNKNOWN_SHARE or best.intent >= STRONG_INTENT)
        if confident and best and best.intent < BACKED_INTENT:
            rival = next((m for m in matches if m.entry.topic != best.entry.topic), None)
            confident = rival is None or best.score - rival.score >= MIN_MARGIN
        within = bool(best and previous and (best.entry.topic == previous.topic or best.entry.id in related))
        # Resolved on its own strength, before the lower bar for answering within the topic.
        resolved = pointing and confident and within
        if not confident and pointing and best and best.score >= POINTING_MIN_CONFIDENCE and within:
            confident = True
        nearest: list[Entry] = []
        seen_topics: set[str] = set()
        for match in matches:
            if match.score <= 0 or match.entry.topic in seen_topics:
                continue
            seen_topics.add(match.entry.topic)
            nearest.append(match.entry)
            if len(nearest) == 3:
                break
        return Retrieval(best=best, confident=confident, nearest=tuple(nearest), follow_up=follow_up,
                         resolved=resolved)
