"""Assertions and check steps judged against what came back.

Each check gives a :class:`Check`: what was asked, whether it held, and what came back, so
a report can show a failure beside the reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from convtest.spec import NONE, Assertion, Step


@dataclass
class Reply:
    """The assistant's answer to one step, as the public API gave it."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    understanding: dict[str, Any] | None = None
    error: str | None = None
    """Why there is no reply (an HTTP error), None when there is one."""
    cursor: int = 0
    """How many messages ``bot`` and ``utter`` steps have consumed."""

    @property
    def text(self) -> str:
        return normalise(" ".join(m.get("text") or "" for m in self.messages))

    @property
    def buttons(self) -> list[dict[str, str]]:
        return [b for m in self.messages for b in m.get("buttons") or []]

    @property
    def button_titles(self) -> list[str]:
        return [b.get("title", "") for b in self.buttons]

    @property
    def source_ids(self) -> list[str]:
        return list(dict.fromkeys(s.get("id", "") for m in self.messages for s in m.get("sources") or []))

    def values(self, key: str) -> list[Any]:
        return [m.get(key) for m in self.messages if m.get(key) is not None]


@dataclass
class Check:
    what: str
    """The assertion as written (``topic: cost``)."""
    passed: bool
    expected: str
    actual: str


_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _fold(text: str) -> str:
    return normalise(text).casefold()


def _show(values: Any) -> str:
    if isinstance(values, list):
        return ", ".join(str(v) for v in values) if values else "(none)"
    return "(none)" if values in (None, "") else str(values)


def _excerpt(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def judge(assertion: Assertion, reply: Reply) -> Check:
    """One assertion of a ``user`` or ``press`` step against its reply."""
    name, value = assertion.name, assertion.value
    what = f"{name}: {_show(value) if not isinstance(value, dict) else value}"
    passed, expected, actual = _JUDGES[name](value, reply)
    return Check(what=what, passed=passed, expected=expected, actual=actual)


def _text_contains(value: list[str], reply: Reply) -> tuple[bool, str, str]:
    text = _fold(reply.text)
    missing = [v for v in value if _fold(v) not in text]
    return (not missing, f"contains {_show(value)}",
            f"missing {_show(missing)} in: {_excerpt(reply.text)}" if missing else "all found")


def _text_contains_any(value: list[str], reply: Reply) -> tuple[bool, str, str]:
    text = _fold(reply.text)
    found = [v for v in value if _fold(v) in text]
    return (bool(found), f"contains one of {_show(value)}",
            f"found {_show(found)}" if found else f"none found in: {_excerpt(reply.text)}")


def _text_not_contains(value: list[str], reply: Reply) -> tuple[bool, str, str]:
    text = _fold(reply.text)
    found = [v for v in value if _fold(v) in text]
    return (not found, f"contains none of {_show(value)}",
            f"found {_show(found)} in: {_excerpt(reply.text)}" if found else "none found")


def _text_matches(value: str, reply: Reply) -> tuple[bool, str, str]:
    match = re.search(value, reply.text, re.IGNORECASE)
    return (match is not None, f"matches /{value}/",
            f"matched '{match.group(0)}'" if match else f"no match in: {_excerpt(reply.text)}")


def _text_not_matches(value: str, reply: Reply) -> tuple[bool, str, str]:
    match = re.search(value, reply.text, re.IGNORECASE)
    return (match is None, f"does not match /{value}/",
            f"matched '{match.group(0)}' in: {_excerpt(reply.text)}" if match else "no match")


def _has_buttons(value: list[str], reply: Reply) -> tuple[bool, str, str]:
    offered = [_fold(t) for t in reply.button_titles]
    missing = [v for v in value if _fold(v) not in offered]
    return not missing, f"offers {_show(value)}", f"offered {_show(reply.button_titles)}"


def _buttons_exactly(value: list[str], reply: Reply) -> tuple[bool, str, str]:
    same = [_fold(t) for t in reply.button_titles] == [_fold(v) for v in value]
    return same, f"offers exactly {_show(value)}", f"offered {_show(reply.button_titles)}"


def _no_buttons(value: bool, reply: Reply) -> tuple[bool, str, str]:
    none = not reply.buttons
    return none == value, "no button" if value else "some button", f"offered {_show(reply.button_titles)}"


def _sources(value: list[str], reply: Reply) -> tuple[bool, str, str]:
    missing = [v for v in value if v not in reply.source_ids]
    return not missing, f"cites {_show(value)}", f"cited {_show(reply.source_ids)}"


def _has_sources(value: bool, reply: Reply) -> tuple[bool, str, str]:
    return (bool(reply.source_ids) == value, "some source" if value else "no source",
            f"cited {_show(reply.source_ids)}")


def _provenance(key: str):
    def judge_it(value: str, reply: Reply) -> tuple[bool, str, str]:
        found = reply.values(key)
        passed = not found if value == NONE else value in found
        return passed, f"{key} {value}", f"{key} {_show(found)}"
    return judge_it


def _understood(reply: Reply, key: str) -> Any:
    return (reply.understanding or {}).get(key)


def _intent(value: list[str], reply: Reply) -> tuple[bool, str, str]:
    intent = _understood(reply, "intent")
    confidence = _understood(reply, "confidence")
    shown = f"{intent} ({confidence:.2f})" if isinstance(confidence, (int, float)) else _show(intent)
    return intent in value, f"intent {' or '.join(value)}", f"intent {shown}"


def _min_confidence(value: float, reply: Reply) -> tuple[bool, str, str]:
    confidence = _understood(reply, "confidence")
    passed = isinstance(confidence, (int, float)) and confidence >= value
    shown = f"{confidence:.3f}" if isinstance(confidence, (int, float)) else "(none)"
    return passed, f"confidence ≥ {value:g}", f"intent {_show(_understood(reply, 'intent'))}, confidence {shown}"


def _red_flag(value: str, reply: Reply) -> tuple[bool, str, str]:
    levels = list(dict.fromkeys(reply.values("red_flag")))
    passed = not levels if value == NONE else value in levels
    return passed, f"red flag {value}", f"red flag {_show(levels)}"


def _summary_link(value: bool, reply: Reply) -> tuple[bool, str, str]:
    links = reply.values("summary_url")
    return (bool(links) == value, "a summary link" if value else "no summary link",
            f"summary link {_show(links)}")


def _bot_uttered(value: dict[str, Any], reply: Reply) -> tuple[bool, str, str]:
    responses = _understood(reply, "responses") or []
    for index, message in enumerate(reply.messages):
        if "utter_name" in value and (index >= len(responses) or responses[index] != value["utter_name"]):
            continue
        if "text_matches" in value and not re.search(
                str(value["text_matches"]), normalise(message.get("text") or ""), re.IGNORECASE):
            continue
        titles = [_fold(b.get("title", "")) for b in message.get("buttons") or []]
        if "buttons" in value and any(_fold(t) not in titles for t in value["buttons"]):
            continue
        return True, f"a message with {value}", f"message {index + 1}"
    shown = "; ".join(
        f"[{responses[i] if i < len(responses) else '?'}] {_excerpt(normalise(m.get('text') or ''), 80)}"
        for i, m in enumerate(reply.messages))
    return False, f"a message with {value}", shown or "(no message)"


def _action_executed(value: str, reply: Reply) -> tuple[bool, str, str]:
    actions = _understood(reply, "actions") or []
    return value in actions, f"action {value}", f"actions {_show(actions)}"


def _slots(expect_set: bool):
    def judge_it(value: list[tuple[str, Any, bool]], reply: Reply) -> tuple[bool, str, str]:
        slots = _understood(reply, "slots") or {}
        wrong = []
        for name, expected, has_value in value:
            was_set = name in slots and (not has_value or slots[name] == expected)
            if was_set != expect_set:
                wrong.append(f"{name}={expected}" if has_value else name)
        word = "set" if expect_set else "not set"
        asked = _show([f"{n}={v}" if h else n for n, v, h in value])
        return not wrong, f"slots {word}: {asked}", f"set this turn: {_show([f'{k}={v}' for k, v in slots.items()])}"
    return judge_it


_JUDGES = {
    "text_contains": _text_contains,
    "text_contains_any": _text_contains_any,
    "text_not_contains": _text_not_contains,
    "text_matches": _text_matches,
    "text_not_matches": _text_not_matches,
    "buttons": _has_buttons,
    "buttons_exactly": _buttons_exactly,
    "no_buttons": _no_buttons,
    "sources": _sources,
    "has_sources": _has_sources,
    "topic": _provenance("topic"),
    "entry": _provenance("entry"),
    "intent": _intent,
    "min_confidence": _min_confidence,
    "red_flag": _red_flag,
    "summary_link": _summary_link,
    "bot_uttered": _bot_uttered,
    "action_executed": _action_executed,
    "slot_was_set": _slots(True),
    "slot_was_not_set": _slots(False),
}


def check_step(step: Step, reply: Reply) -> Check:
    """A ``bot``, ``utter``, ``slot_was_set`` or ``slot_was_not_set`` step against the latest reply."""
    if step.kind in ("slot_was_set", "slot_was_not_set"):
        return judge(Assertion(step.kind, step.value), reply)
    index = reply.cursor
    reply.cursor += 1
    what = f"{step.kind}: {step.value}"
    if index >= len(reply.messages):
        return Check(what, False, f"message {index + 1} of the reply",
                     f"the reply has {len(reply.messages)} message(s)")
    message = reply.messages[index]
    if step.kind == "bot":
        text = normalise(message.get("text") or "")
        return Check(what, text == normalise(step.value), f"message {index + 1}: {normalise(step.value)}",
                     f"message {index + 1}: {text}")
    responses = _understood(reply, "responses") or []
    name = responses[index] if index < len(responses) else None
    return Check(what, name == step.value, f"message {index + 1} from {step.value}",
                 f"message {index + 1} from {_show(name)}: {_excerpt(normalise(message.get('text') or ''), 120)}")


def forbidden(reply: Reply, contains: list[str], matches: list[str]) -> list[Check]:
    """The conversation-wide ``no_reply`` checks that this reply breaks (none: all hold)."""
    broken: list[Check] = []
    for message in reply.messages:
        text = normalise(message.get("text") or "")
        for word in contains:
            if _fold(word) in _fold(text):
                broken.append(Check(f"no_reply contains: {word}", False, f"no reply contains '{word}'",
                                    _excerpt(text)))
        for pattern in matches:
            match = re.search(pattern, text, re.IGNORECASE)
            if match:
                broken.append(Check(f"no_reply matches: {pattern}", False,
                                    f"no reply matches /{pattern}/", f"'{match.group(0)}' in: {_excerpt(text)}"))
    return broken
