"""The safety gate: red flags and requests to decline, on every message, after the classifier.

Placed in config.yml after FallbackClassifier. For each message (button payloads starting
with "/" pass untouched):

0. The language is identified (bot/safety/languages.py). A message in another language gets
   that language's urgent lexicon only (English words inside it, such as French "mal", never
   trigger the English rules): ``red_flag_<level>`` on a match, else ``other_language``.
1. The rule layer (contract/safety/red_flags.py) finds a red flag: the intent becomes
   ``red_flag_<level>`` with confidence 1.0, first in the ranking, whatever the classifier
   said.
2. Else the classifier's own top intent is ``red_flag_*``:
   - the rules say the words are only mentioned in a general question ("is swelling a side
     effect?") or only under a negation ("no fever or anything"): the intent becomes the next
     intent of the ranking that is not a red flag (never for crisis);
   - a crisis below ``piece_threshold`` whose words the rules read in another sense (a figure
     of speech about a bill, hair dye): the next intent too (source ``other_sense``);
   - its confidence is at least ``threshold``: kept (flag ``unspecified``);
   - below ``threshold``: not trusted on its own; the next intent of the ranking is used.
   Each piece of a message read in pieces (the classifier's ``reading``: sentences, and
   clauses where a new question starts) is checked the same way, so a crisis or red flag
   buried in a long story is not out-voted by the rest of it.
3. Else the rules find a request to decline (contract/safety/limits.py): ``ask_<kind>``, 1.0.
4. Else the classifier's own request to decline (``ask_diagnosis``, ``ask_dose``, ...) below
   ``refusal_threshold``: the next intent that is neither a red flag nor a refusal.

The message also gets a ``safety`` summary (in the parse output, so in the tracker's
``latest_message``): utter_red_flag's reply (bot/dialogue/nlg.py) reads the level and flags from it, and the API and staff
can see what decided. No entities are added (Rasa's test stories would then have to list
them on every red-flag message): ``source`` (rules, nlu, mention, negated, other_sense, below_threshold,
limit, refusal_below_threshold, language or None), the level and flags, the limit kind, the
message's language, and the classifier's own intent and confidence.

Not trained; the rules are compiled once when the component is created.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.intent_classifier import READING_KEY
from bot.safety import languages
from contract.safety.limits import KINDS as LIMIT_KINDS, Limits, detect_limit, load_limits
from bot.nlp.segments import sentences
from contract.levels import INTENT_PREFIX, LEVELS, most_severe, severity
from contract.safety.red_flags import NO_DETECTION, Detection, RedFlagRules, detect, in_context, load_rules

logger = logging.getLogger(__name__)

RED_FLAG_PREFIX = INTENT_PREFIX
FALLBACK_INTENT = "nlu_fallback"
EXTRACTOR = "SafetyGate"
SUMMARY_KEY = "safety"
UNSPECIFIED_FLAG = "unspecified"
OTHER_LANGUAGE_INTENT = "other_language"
ENGLISH = "en"


def is_red_flag(intent_name: Optional[str]) -> bool:
    return bool(intent_name) and str(intent_name).startswith(RED_FLAG_PREFIX)


REFUSAL_INTENTS = frozenset(f"ask_{kind}" for kind in LIMIT_KINDS)


def is_refusal(intent_name: Optional[str]) -> bool:
    return intent_name in REFUSAL_INTENTS


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SafetyGate(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # The classifier's red_flag_* intent is trusted on its own from this confidence.
            # config.yml sets 0.6: on the blind sets the classifier adds catches down to 0.6
            # that the rules miss, for about one more false alarm in 200 symptom-free
            # messages on the dev set; a missed red flag costs far more (eval/red_flags.py).
            "threshold": 0.6,
            # Below this a replacement intent becomes nlu_fallback (as FallbackClassifier does).
            "fallback_threshold": 0.4,
            # The classifier's requests to decline (ask_diagnosis, ask_dose, ...) are trusted
            # on their own from this confidence; below it the next intent is used. A missed
            # refusal is answered from the knowledge base, which never gives a dose or a
            # verdict; a wrong refusal leaves a plain question unanswered.
            "refusal_threshold": 0.9,
            # A piece of a message (a sentence of a long story) classified as a red flag on its
            # own is trusted from this confidence, checked by the rules for mentions and
            # negations as the whole message is. Higher than for a whole message: a short
            # sentence out of its story ("I want to feel like myself again") is easily misread;
            # config.yml sets it from the measured false alarms (make safety-eval).
            "piece_threshold": 0.9,
        }

    def __init__(self, config: Dict[Text, Any], rules: Optional[RedFlagRules] = None,
                 limits: Optional[Limits] = None) -> None:
        self._config = {**self.get_default_config(), **config}
        self._rules = rules or load_rules()
        self._limits = limits or load_limits()
        detect("warm up the word lists", self._rules)  # read the English word table now
        languages.warm_up()  # the language model and lexicons, now rather than on a first message

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "SafetyGate":
        return cls(config)

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _classifier_top(ranking: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        """The classifier's own best intent (FallbackClassifier's nlu_fallback skipped)."""
        return next((r for r in ranking if r.get("name") != FALLBACK_INTENT), None)

    def _replacement(self, ranking: List[Dict[str, Any]], without: float = 0.0) -> Dict[str, Any]:
        """The next intent that is neither a red flag nor a refusal, or nlu_fallback when it
        is below ``fallback_threshold``. ``without``: the confidence of a reading set aside,
        shared out among the others (the next one's share of what is left)."""
        best = next((r for r in ranking if not is_red_flag(r.get("name")) and not is_refusal(r.get("name"))
                     and r.get("name") not in (FALLBACK_INTENT, OTHER_LANGUAGE_INTENT)), None)
        confidence = float(best.get("confidence") or 0.0) if best else 0.0
        if without:
            confidence = min(1.0, confidence / max(1e-9, 1.0 - without))
        if best is None or confidence < self._config["fallback_threshold"]:
            return {"name": FALLBACK_INTENT, "confidence": 1.0}
        return {"name": best["name"], "confidence": confidence}

    @staticmethod
    def _set_intent(message: Message, intent: Dict[str, Any], ranking: List[Dict[str, Any]]) -> None:
        rest = [r for r in ranking if r.get("name") != intent["name"]]
        message.set(INTENT, intent, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [intent, *rest], add_to_output=True)

    # -- the gate -----------------------------------------------------------------------
    def _english_parts(self, text: str) -> Detection:
        """The English rules on the parts of a mixed message that are English on their own
        ("my lips are swelling, je ne parle pas bien anglais"), never on the foreign words."""
        parts = [p.strip() for sentence in sentences(text) for p in re.split(r"[,:\u2013\u2014]", sentence)]
        english = [p for p in parts if len(p.split()) >= 3 and languages.identify(p) == ENGLISH]
        return detect(" . ".join(english), self._rules) if english else NO_DETECTION

    def _other_language(self, message: Message, text: str, language: str,
                        ranking: List[Dict[str, Any]], summary: Dict[str, Any]) -> None:
        """A message in another language: its own urgent lexicon (and the English rules on
        any English part of it), else the language notice."""
        levels = languages.detect_urgent(text, language) if language in languages.SUPPORTED else ()
        english = self._english_parts(text)
        if english.level:
            levels = (*levels, english.level)
        if levels:
            level = most_severe(*levels)
            self._set_intent(message, {"name": RED_FLAG_PREFIX + level, "confidence": 1.0}, ranking)
            flags = [f"{language}:{lv}" for lv in levels if lv != english.level] + list(english.flags)
            summary.update(source="language_rules", level=level, flags=flags)
        else:
            self._set_intent(message, {"name": OTHER_LANGUAGE_INTENT, "confidence": 1.0}, ranking)
            summary.update(source="language")

    def _piece_flag(self, message: Message) -> Optional[tuple[str, float]]:
        """The most severe red flag the classifier finds in one piece of the message on its
        own: (level, confidence), or None."""
        best: Optional[tuple[str, float]] = None
        for piece in (message.get(READING_KEY) or {}).get("pieces") or []:
            top = self._classifier_top(list(piece.get("intent_ranking") or []))
            if not top or not is_red_flag(top.get("name")):
                continue
            confidence = float(top.get("confidence") or 0.0)
            if confidence < self._config["piece_threshold"]:
                continue
            name = str(top["name"])
            level = name[len(RED_FLAG_PREFIX):]
            if level not in LEVELS:
                continue
            if level != "crisis":
                piece_text = str(piece.get("text") or "")
                detection = detect(piece_text, self._rules)
                if detection.mention_only or detection.negated or in_context(piece_text, level, self._rules):
                    continue
            if best is None or severity(level) > severity(best[0]):
                best = (level, confidence)
        return best

    def _limit_text(self, message: Message, text: str) -> str:
        """What the refusal rules read: a long story's questions only, else the message."""
        reading = message.get(READING_KEY) or {}
        if reading.get("long"):
            questions = [str(p.get("text") or "") for p in reading.get("pieces") or [] if p.get("question")]
            if questions:
                return " . ".join(questions)
        return text

    def process_one(self, message: Message) -> None:
        text = message.get(TEXT)
        if not text or text.startswith("/"):
            return
        ranking = list(message.get(INTENT_RANKING_KEY) or [])
        if not ranking and message.get(INTENT):
            ranking = [message.get(INTENT)]
        top = self._classifier_top(ranking)
        language = languages.identify(text)
        summary: Dict[str, Any] = {
            "source": None,
            "level": None,
            "flags": [],
            "mention_only": False,
            "negated": False,
            "limit": None,
            "language": language,
            "classifier": {"name": top.get("name"), "confidence": float(top.get("confidence") or 0.0)}
            if top else None,
        }
        if language != ENGLISH:
            self._other_language(message, text, language, ranking, summary)
            message.set(SUMMARY_KEY, summary, add_to_output=True)
            return
        if (message.get(INTENT) or {}).get("name") == OTHER_LANGUAGE_INTENT:
            # Only the identification above decides that a message is in another language.
            self._set_intent(message, self._replacement(ranking), ranking)
            ranking = list(message.get(INTENT_RANKING_KEY) or ranking)
        detection: Detection = detect(text, self._rules)
        summary.update(mention_only=detection.mention_only, negated=detection.negated)
        if detection.level:
            intent = {"name": RED_FLAG_PREFIX + detection.level, "confidence": 1.0}
            self._set_intent(message, intent, ranking)
            summary.update(source="rules", level=detection.level, flags=list(detection.flags))
        elif top and is_red_flag(top.get("name")):
            confidence = float(top.get("confidence") or 0.0)
            level = top["name"][len(RED_FLAG_PREFIX):]
            over = level in LEVELS and in_context(text, level, self._rules)
            if (detection.mention_only or detection.negated or over) and top["name"] != RED_FLAG_PREFIX + "crisis":
                self._set_intent(message, self._replacement(ranking), ranking)
                summary.update(source="mention" if detection.mention_only or over else "negated")
            elif level == "crisis" and detection.crisis_other_sense and confidence < self._config["piece_threshold"]:
                # The rules saw the crisis words and read them in another sense ("she wanted
                # to die when she saw her bill"); the classifier is not sure enough to overrule.
                # What it gave the crisis reading goes back to the other readings.
                self._set_intent(message, self._replacement(ranking, without=confidence), ranking)
                summary.update(source="other_sense")
            elif confidence >= self._config["threshold"]:
                level = top["name"][len(RED_FLAG_PREFIX):]
                self._set_intent(message, {"name": top["name"], "confidence": confidence}, ranking)
                summary.update(source="nlu", level=level, flags=[UNSPECIFIED_FLAG])
            else:
                self._set_intent(message, self._replacement(ranking), ranking)
                summary.update(source="below_threshold")
        if summary["source"] not in ("rules", "nlu"):
            piece = self._piece_flag(message)
            if piece:
                level, confidence = piece
                self._set_intent(message, {"name": RED_FLAG_PREFIX + level, "confidence": confidence},
                                 list(message.get(INTENT_RANKING_KEY) or ranking))
                summary.update(source="nlu_piece", level=level, flags=[UNSPECIFIED_FLAG])
        if summary["source"] not in ("rules", "nlu", "nlu_piece"):
            request = detect_limit(self._limit_text(message, text), self._limits)
            if request:
                intent = {"name": f"ask_{request.kind}", "confidence": 1.0}
                self._set_intent(message, intent, list(message.get(INTENT_RANKING_KEY) or ranking))
                summary.update(source="limit", limit=request.kind)
            else:
                current = message.get(INTENT) or {}
                if is_refusal(current.get("name")) and \
                        float(current.get("confidence") or 0.0) < self._config["refusal_threshold"]:
                    ranking_now = list(message.get(INTENT_RANKING_KEY) or ranking)
                    self._set_intent(message, self._replacement(ranking_now), ranking_now)
                    summary.update(source="refusal_below_threshold")
        message.set(SUMMARY_KEY, summary, add_to_output=True)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self.process_one(message)
        return messages
