"""Read a whole message: its sentences, and the questions in it wherever they are.

Patients write long stories with the question at the end, put two or three questions in one
message ("how long does a session take and can I drive home after?"), or bury a sentence
that matters in the middle. :func:`read` splits a message into sentences, each sentence into
clauses where a new question starts, and marks which pieces ask something. It is pure text
work (regular expressions, no model), cheap enough for every message.

Usage::

    reading = read("does it hurt, how much is it and when will i see anything")
    [q.text for q in reading.questions]
    # ['does it hurt', 'how much is it', 'when will i see anything']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: A message of at least this many words with several sentences is "long": its question is
#: read on its own, with the rest as context.
LONG_WORDS = 30
#: At most this many questions of one message are answered.
MAX_QUESTIONS = 3
#: At most this many pieces of one message are classified on their own.
MAX_PIECES = 10

_SENTENCE_END = re.compile(r"(?<=[?!])\s*|(?<=[^.\d][.])\s+|(?<=\.\.)\s*|\n+|;\s*")
_WORDS = re.compile(r"[\w']+", re.UNICODE)

# Words a patient puts before the question itself ("ok so", "also", "anyway", "hi").
_LEAD = (
    r"(?:(?:ok(?:ay)?|so|and|but|also|anyway|anyways|well|hi|hey|hello|hiya|btw|plus|oh|right|"
    r"um+|erm+|uh+|alright|sorry|thanks|thank you|quick question|one more thing|another thing|"
    r"last thing|next|then|lol|honestly|basically|just|actually)[\s,!.:-]+)*"
)
_WH = r"(?:what|whats|what's|how|hows|how's|when|whens|where|wheres|where's|why|whys|who|whos|who's|which|whats)"
_AUX = (r"(?:is|isnt|are|arent|am|can|cant|could|couldnt|do|dont|does|doesnt|did|didnt|will|wont|would|"
        r"wouldnt|should|shouldnt|shall|has|hasnt|have|havent|was|wasnt|were|werent|may|might|must)")
_SUBJECT = (r"(?:i|it|its|you|u|they|we|he|she|there|this|that|these|those|my|your|the|a|an|meso\w*|"
            r"people|men|women|someone|anyone|one|results?|sessions?|injections?|treatment)")
_REQUEST = (r"(?:tell me|explain|describe|give me|list|let me know|i want to know|i wanna know|"
            r"id like to know|i'd like to know|i would like to know|i need to know|wondering|"
            r"i was wondering|im wondering|i'm wondering|any idea|do you know|can you tell me|"
            r"could you tell me|please tell me|pls tell me)")
_QUESTION_START = re.compile(
    rf"^{_LEAD}(?:(?:at|in|for|by|from|on|to|with|after|before|until|till) (?:what|which|whom)\b|{_WH}\b|"
    rf"{_AUX}\s+{_SUBJECT}\b|{_REQUEST}\b|any\b|anything\b|whether\b|"
    rf"(?:is|are|am|can|could|do|does|did|will|would|should|shall|has|have|was|were|may|might)\s+\w+)",
    re.IGNORECASE,
)
# A question announced inside a sentence: "anyway my actual question is how many...", "i just
# need a rough idea of what it costs".
_ASKING = re.compile(
    r"\b(?:my (?:actual |real |main |only |one |big )?question (?:is|was)|(?:i )?(?:just |really |only )?(?:want|need|wanna|would like|d like|'d like) "
    r"(?:to know|to understand|to find out|a rough idea|an idea)|i (?:just |really )?(?:need|want) (?:a rough idea|an idea)|"
    r"(?:wondering|wonder) (?:if|whether|what|how|when|why|which)|(?:can|could) (?:you|u) (?:tell|explain|let me know))\b",
    re.IGNORECASE,
)
# An inverted question inside a sentence: "im pregnant can i have it", "so do i need to".
_INVERSION = re.compile(r"\b(?:can|could|should|shall|will|would|do|does|did|am)\s+(?:i|you|u|we)\b(?!\s*(?:[.,!]|$))",
                        re.IGNORECASE)
# Where a second question starts inside a sentence: after a comma, or after "and", "or",
# "also", "plus", "&", when what follows starts a question ("and can I drive home after").
_JOIN = r"(?:,\s*(?:and|or|also|plus|but|&|n)?\s*|\s+(?:and|or|also|plus|but|&|n|and also|and then)\s+)"
_SPLIT = re.compile(
    rf"{_JOIN}(?=(?:(?:if not|if so|if yes|if no|otherwise|or else|then|so),?\s+)?(?:(?:at|in|for|by|from|on|to|with|after|before|until) (?:what|which)\b|{_WH}\b(?!\s+(?:it|they|he|she|we|you|i)\b\s*[,.!?]*$)|{_AUX}\s+{_SUBJECT}\b|"
    rf"(?:tell me|explain)\b|(?:just\s+)?(?:wondering|i was wondering|im wondering)\b|(?:(?:i|just|really|also|only)\s+)*(?:want|need|wanna|would like|d like) to know\b))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Piece:
    """A sentence, or a clause of one where a new question starts. ``question``: it asks
    something, or it is the last sentence of a long story that has no question form."""

    text: str
    question: bool
    sentence: int  # index of its sentence in the message


@dataclass(frozen=True)
class Reading:
    """A message read whole: its sentences and pieces, in order."""

    text: str
    sentences: tuple[str, ...]
    pieces: tuple[Piece, ...]
    words: int

    @property
    def questions(self) -> tuple[Piece, ...]:
        """The pieces that ask something, in the order asked (at most :data:`MAX_QUESTIONS`)."""
        return tuple(p for p in self.pieces if p.question)[:MAX_QUESTIONS]

    @property
    def long(self) -> bool:
        """Several sentences and at least :data:`LONG_WORDS` words."""
        return len(self.sentences) > 1 and self.words >= LONG_WORDS

    @property
    def compound(self) -> bool:
        """Two or more questions in one message."""
        return len(self.questions) > 1

    @property
    def needs_pieces(self) -> bool:
        """Whether the pieces say more than the whole message: several sentences or questions."""
        return len(self.pieces) > 1


def word_count(text: str) -> int:
    return len(_WORDS.findall(text))


def sentences(text: str) -> list[str]:
    """Split on ? ! ; line breaks and full stops that end a sentence (not 38.5, not "e.g.")."""
    out = []
    for part in _SENTENCE_END.split(text or ""):
        part = (part or "").strip(" \t,-")
        if part and _WORDS.search(part):
            out.append(part)
    return out


def is_question(text: str) -> bool:
    """Whether a sentence or clause asks something (a question mark, or a question's opening)."""
    stripped = text.strip()
    return (stripped.endswith("?") or bool(_QUESTION_START.search(stripped)) or bool(_INVERSION.search(stripped))
            or bool(_ASKING.search(stripped)))


def _clauses(sentence: str) -> list[str]:
    """A sentence cut where a new question starts; pieces of one word stay with the one before."""
    cuts = [0] + [m.start() for m in _SPLIT.finditer(sentence)] + [len(sentence)]
    pieces: list[str] = []
    for start, end in zip(cuts, cuts[1:]):
        piece = sentence[start:end]
        piece = re.sub(rf"^{_JOIN}", "", piece, flags=re.IGNORECASE).strip(" ,")
        if not piece:
            continue
        if pieces and word_count(piece) < 2:
            pieces[-1] = f"{pieces[-1]} {piece}"
        else:
            pieces.append(piece)
    return pieces


# A short question that points at the sentence before it: "i read some people get bald
# patches from it. how often does that happen?" ("they" is left out: in "do they numb your
# scalp first?" it means the clinic, and the question stands on its own.)
_POINTS_BACK = re.compile(r"\b(that|this|it|those|these|them)\b", re.IGNORECASE)
SHORT_QUESTION_WORDS = 6


def _with_context(pieces: list[Piece]) -> list[Piece]:
    """A short question pointing back is read together with the statement just before it."""
    out: list[Piece] = []
    for piece in pieces:
        if (piece.question and out and not out[-1].question and word_count(piece.text) <= SHORT_QUESTION_WORDS
                and _POINTS_BACK.search(piece.text)):
            before = out.pop()
            piece = Piece(f"{before.text} {piece.text}", True, piece.sentence)
        out.append(piece)
    return out


_LEADING_LINK = re.compile(r"^\W*(and|or|but|so|also|plus|then|what about|how about|n)\b", re.IGNORECASE)


def _statement(clauses: list[str]) -> bool:
    """Whether clauses before a question say something of their own (at least four words,
    not opening with a link to what came before, as "and the gun one, is it quicker?" does)."""
    text = ", ".join(clauses)
    return word_count(text) >= 4 and not _LEADING_LINK.search(text) and not any(is_question(c) for c in clauses)


def read(text: str) -> Reading:
    """Sentences, and pieces marked as questions or not, of a whole message."""
    found = sentences(text)
    pieces: list[Piece] = []
    for number, sentence in enumerate(found):
        clauses = _clauses(sentence)
        asks = [is_question(c) for c in clauses]
        if len(clauses) > 1 and sum(asks) == 1 and asks[-1] and _statement(clauses[:-1]):
            # A statement, then the question: "no fever, nothing like that, just want to
            # know how much it is".
            clauses, asks = [", ".join(clauses[:-1]), clauses[-1]], [False, True]
        elif len(clauses) > 1 and sum(asks) < 2:
            # Only one question in the sentence: keep the sentence whole.
            clauses, asks = [sentence], [is_question(sentence)]
        elif len(clauses) > 1 and sentence.rstrip().endswith("?"):
            # "does it hurt and how long does it take?": every clause of a question sentence asks.
            asks = [True] * len(clauses)
        pieces.extend(Piece(c, q, number) for c, q in zip(clauses, asks))
    pieces = _with_context(pieces)
    if len(found) > 1 and word_count(text) >= LONG_WORDS and pieces and not any(p.question for p in pieces):
        # A long story with no question form: people put what they want to know last.
        pieces[-1] = Piece(pieces[-1].text, True, pieces[-1].sentence)
    return Reading(text=text, sentences=tuple(found), pieces=tuple(pieces[:MAX_PIECES]),
                   words=word_count(text))
