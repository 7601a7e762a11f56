"""The conversation-test format: what a file may say, read and checked before anything runs.

Every step kind and assertion name lives here, once: the loader checks files against them,
the runner and the reports read them, and drafts (``convtest.draft``) write them. A mistake
in a file is a :class:`FormatError` naming the file, the test case and the step.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from contract.levels import LEVELS

RED_FLAG_LEVELS = LEVELS
"""Red-flag levels an assertion may name (``none``: no red flag)."""

NONE = "none"

USER_STEPS = ("user", "press")
"""Steps that send something; they may carry ``assertions``."""

CHECK_STEPS = ("bot", "utter", "slot_was_set", "slot_was_not_set")
"""Steps that check the latest reply (Rasa Pro's step names)."""

TEXT_LISTS = ("text_contains", "text_contains_any", "text_not_contains")
TEXT_PATTERNS = ("text_matches", "text_not_matches")
ASSERTIONS = (
    *TEXT_LISTS,
    *TEXT_PATTERNS,
    "buttons",
    "buttons_exactly",
    "no_buttons",
    "sources",
    "has_sources",
    "topic",
    "entry",
    "intent",
    "min_confidence",
    "red_flag",
    "summary_link",
    "bot_uttered",
    "action_executed",
    "slot_was_set",
    "slot_was_not_set",
)
"""Every assertion name a ``user`` or ``press`` step may carry."""

NEEDS_UNDERSTANDING = frozenset(
    {"intent", "min_confidence", "action_executed", "slot_was_set", "slot_was_not_set", "utter"}
)
"""Assertions and steps that read what the assistant understood (needs the test key)."""

BOT_UTTERED_KEYS = ("utter_name", "text_matches", "buttons")
FIXTURE_KEYS = ("consent", "clinic")
METADATA_KEYS = ("language", "user_agent")
CASE_KEYS = (
    "test_case", "description", "tags", "fixtures", "metadata", "no_reply", "steps",
)
NO_REPLY_KEYS = ("contains", "matches")
TOP_KEYS = ("fixtures", "metadata", "test_cases")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,'()/ -]{0,119}$")


class FormatError(Exception):
    """One or more mistakes in conversation-test files, each naming where it is."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Assertion:
    name: str
    value: Any


@dataclass(frozen=True)
class Step:
    kind: str
    """One of USER_STEPS or CHECK_STEPS."""
    value: Any
    """The text, button title, expected text, response name or slot list."""
    assertions: tuple[Assertion, ...] = ()
    line: int | None = None

    @property
    def sends(self) -> bool:
        return self.kind in USER_STEPS


@dataclass(frozen=True)
class Fixture:
    name: str
    consent: bool | None = None
    clinic: dict[str, Any] | None = None


@dataclass
class TestCase:
    name: str
    file: Path
    steps: list[Step]
    description: str = ""
    tags: list[str] = field(default_factory=list)
    fixtures: list[str] = field(default_factory=list)
    consent: bool = True
    clinic: dict[str, Any] | None = None
    """The clinic's facts this test needs (None: whatever the stack has)."""
    clinic_fixture: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    no_reply_contains: list[str] = field(default_factory=list)
    no_reply_matches: list[str] = field(default_factory=list)
    line: int | None = None

    __test__ = False  # not a pytest class

    @property
    def needs_understanding(self) -> bool:
        """True when some step reads what the assistant understood (intent, slots, ...)."""
        for step in self.steps:
            if step.kind in NEEDS_UNDERSTANDING:
                return True
            for assertion in step.assertions:
                if assertion.name in NEEDS_UNDERSTANDING:
                    return True
                if assertion.name == "bot_uttered" and "utter_name" in assertion.value:
                    return True
        return False

    @property
    def step_count(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Catalog:
    """The ids a file may name, to catch typos before running. Empty sets: not checked."""

    topics: frozenset[str] = frozenset()
    entries: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    intents: frozenset[str] = frozenset()
    responses: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    slots: frozenset[str] = frozenset()
    clinic_fields: frozenset[str] = frozenset()


# --- reading -------------------------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping (``__line__``)."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def _as_str_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _named_blocks(raw: Any, where: str, problems: list[str]) -> dict[str, dict[str, Any]]:
    """Rasa Pro's ``- name: {...}`` list of one-key mappings, as a dict."""
    blocks: dict[str, dict[str, Any]] = {}
    if raw is None:
        return blocks
    if not isinstance(raw, list):
        problems.append(f"{where}: must be a list of '- name: {{...}}' items")
        return blocks
    for item in raw:
        item = {k: v for k, v in item.items() if k != "__line__"} if isinstance(item, dict) else item
        if not isinstance(item, dict) or len(item) != 1:
            problems.append(f"{where}: each item is one 'name: {{...}}' mapping")
            continue
        (name, body), = item.items()
        if not isinstance(body, dict):
            problems.append(f"{where} '{name}': must be a mapping")
            continue
        if name in blocks:
            problems.append(f"{where} '{name}': defined twice")
        blocks[str(name)] = _strip_lines(body)
    return blocks


class _CaseReader:
    """Checks one test case; appends every problem found to ``problems``."""

    def __init__(self, path: Path, catalog: Catalog, fixtures: dict[str, Fixture],
                 metadata: dict[str, dict[str, str]], problems: list[str]) -> None:
        self.path, self.catalog, self.fixtures = path, catalog, fixtures
        self.metadata, self.problems = metadata, problems
        self.where = str(path)

    def problem(self, text: str) -> None:
        self.problems.append(f"{self.where}: {text}")

    def read(self, raw: Any, index: int) -> TestCase | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("test_case"), str):
            self.problems.append(f"{self.path}: test case #{index + 1}: needs 'test_case: NAME'")
            return None
        name = raw["test_case"]
        line = raw.get("__line__")
        self.where = f"{self.path}:{line}: test '{name}'"
        if not NAME.match(name):
            self.problem("the name may hold up to 120 letters, digits, spaces and _ . , ' ( ) / -")
        unknown = sorted(set(raw) - set(CASE_KEYS) - {"__line__"})
        if unknown:
            self.problem(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(CASE_KEYS)}")
        case = TestCase(name=name, file=self.path, steps=[], line=line,
                        description=str(raw.get("description") or ""))
        tags = raw.get("tags", [])
        if _as_str_list(tags) is None and tags != []:
            self.problem("'tags' must be a list of words")
        else:
            case.tags = _as_str_list(tags) or []
        self._fixtures(case, raw.get("fixtures"))
        self._metadata(case, raw.get("metadata"))
        self._no_reply(case, raw.get("no_reply"))
        steps = raw.get("steps")
        if not isinstance(steps, list) or not steps:
            self.problem("needs 'steps:', a list with at least one step")
            return case
        for number, step in enumerate(steps, start=1):
            parsed = self._step(step, number)
            if parsed is not None:
                case.steps.append(parsed)
        if not any(step.sends for step in case.steps):
            self.problem("needs at least one 'user' or 'press' step")
        return case

    def _fixtures(self, case: TestCase, names: Any) -> None:
        if names is None:
            return
        listed = _as_str_list(names)
        if listed is None:
            self.problem("'fixtures' must be a list of fixture names")
            return
        case.fixtures = listed
        for name in listed:
            fixture = self.fixtures.get(name)
            if fixture is None:
                known = ", ".join(sorted(self.fixtures)) or "none in this file"
                self.problem(f"unknown fixture '{name}' (defined: {known})")
                continue
            if fixture.consent is not None:
                case.consent = fixture.consent
            if fixture.clinic is not None:
                if case.clinic is not None:
                    self.problem(f"fixture '{name}': only one clinic fixture per test")
                case.clinic, case.clinic_fixture = fixture.clinic, name

    def _metadata(self, case: TestCase, name: Any) -> None:
        if name is None:
            return
        if not isinstance(name, str) or name not in self.metadata:
            known = ", ".join(sorted(self.metadata)) or "none in this file"
            self.problem(f"unknown metadata '{name}' (defined: {known})")
            return
        block = self.metadata[name]
        if "language" in block:
            case.headers["Accept-Language"] = str(block["language"])
        if "user_agent" in block:
            case.headers["User-Agent"] = str(block["user_agent"])

    def _no_reply(self, case: TestCase, raw: Any) -> None:
        if raw is None:
            return
        if not isinstance(raw, dict):
            self.problem("'no_reply' must be a mapping with 'contains' and/or 'matches'")
            return
        raw = _strip_lines(raw)
        unknown = sorted(set(raw) - set(NO_REPLY_KEYS))
        if unknown:
            self.problem(f"'no_reply': unknown key(s) {', '.join(unknown)}; known: contains, matches")
        if "contains" in raw:
            texts = _as_str_list(raw["contains"])
            if texts is None:
                self.problem("'no_reply.contains' must be a text or a list of texts")
            else:
                case.no_reply_contains = texts
        if "matches" in raw:
            patterns = _as_str_list(raw["matches"])
            if patterns is None:
                self.problem("'no_reply.matches' must be a pattern or a list of patterns")
            else:
                case.no_reply_matches = [p for p in patterns if self._pattern(p, "no_reply.matches")]

    def _pattern(self, pattern: str, what: str, where: str = "") -> bool:
        try:
            re.compile(pattern)
        except re.error as exc:
            self.problem(f"{where}{what}: not a valid regular expression ({exc})")
            return False
        return True

    def _step(self, raw: Any, number: int) -> Step | None:
        line = raw.get("__line__") if isinstance(raw, dict) else None
        at = f"step {number} (line {line}): " if line else f"step {number}: "
        if not isinstance(raw, dict):
            self.problem(f"{at}must be a mapping such as 'user: TEXT'")
            return None
        keys = [k for k in raw if k not in ("__line__", "assertions")]
        kinds = [k for k in keys if k in USER_STEPS + CHECK_STEPS]
        if len(kinds) != 1 or len(keys) != 1:
            self.problem(f"{at}needs exactly one of {', '.join(USER_STEPS + CHECK_STEPS)}"
                         f" (found: {', '.join(map(str, keys)) or 'nothing'})")
            return None
        kind = kinds[0]
        value = _strip_lines(raw[kind])
        if kind in ("user", "press", "bot", "utter"):
            if not isinstance(value, str) or not value.strip():
                self.problem(f"{at}'{kind}' needs a non-empty text")
                return None
        if kind == "utter":
            self._known(value, self.catalog.responses, "response", at)
        if kind in ("slot_was_set", "slot_was_not_set"):
            value = self._slots(value, at + kind)
        assertions: list[Assertion] = []
        if "assertions" in raw:
            if kind not in USER_STEPS:
                self.problem(f"{at}only 'user' and 'press' steps carry assertions")
            elif not isinstance(raw["assertions"], list):
                self.problem(f"{at}'assertions' must be a list")
            else:
                for item in raw["assertions"]:
                    assertion = self._assertion(_strip_lines(item), at)
                    if assertion is not None:
                        assertions.append(assertion)
        return Step(kind=kind, value=value, assertions=tuple(assertions), line=line)

    def _slots(self, value: Any, at: str) -> list[tuple[str, Any, bool]]:
        """``[NAME or {NAME: VALUE}]`` as (name, value, value given)."""
        items = value if isinstance(value, list) else [value]
        slots: list[tuple[str, Any, bool]] = []
        for item in items:
            if isinstance(item, str):
                slots.append((item, None, False))
            elif isinstance(item, dict) and len(item) == 1:
                (name, expected), = item.items()
                slots.append((str(name), expected, True))
            else:
                self.problem(f"{at}: each slot is NAME or {{NAME: VALUE}}")
                continue
            self._known(slots[-1][0], self.catalog.slots, "slot", at + ": ")
        return slots

    def _known(self, value: str, known: frozenset[str], what: str, at: str) -> None:
        if known and value not in known:
            close = _close(value, known)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            self.problem(f"{at}unknown {what} '{value}'{hint}")

    def _assertion(self, item: Any, at: str) -> Assertion | None:
        if not isinstance(item, dict) or len(item) != 1:
            self.problem(f"{at}each assertion is one 'name: value' mapping")
            return None
        (name, value), = item.items()
        at = f"{at}assertion '{name}': "
        if name not in ASSERTIONS:
            close = _close(str(name), ASSERTIONS)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            self.problem(f"{at}unknown assertion{hint} (known: {', '.join(ASSERTIONS)})")
            return None
        checker = getattr(self, f"_check_{name}", None)
        value = checker(value, at) if checker else self._check_generic(name, value, at)
        return None if value is _INVALID else Assertion(name, value)

    def _check_generic(self, name: str, value: Any, at: str) -> Any:
        if name in TEXT_LISTS:
            texts = _as_str_list(value)
            if texts is None:
                self.problem(f"{at}needs a text or a list of texts")
                return _INVALID
            return texts
        if name in TEXT_PATTERNS:
            if not isinstance(value, str) or not self._pattern(value, "", at):
                if not isinstance(value, str):
                    self.problem(f"{at}needs a regular expression")
                return _INVALID
            return value
        if name in ("buttons", "buttons_exactly"):
            titles = _as_str_list(value) if value != [] else []
            if titles is None:
                self.problem(f"{at}needs a list of button titles")
                return _INVALID
            return titles
        if name in ("no_buttons", "has_sources", "summary_link"):
            if not isinstance(value, bool):
                self.problem(f"{at}needs true or false")
                return _INVALID
            return value
        if name in ("slot_was_set", "slot_was_not_set"):
            return self._slots(value, at.rstrip(": "))
        return value

    def _known_names(self, value: Any, known: frozenset[str], what: str, at: str) -> Any:
        """A name or list of names, each checked against ``known``."""
        names = _as_str_list(value)
        if names is None:
            self.problem(f"{at}needs a {what} or a list of them")
            return _INVALID
        for name in names:
            self._known(name, known, what, at)
        return names

    def _check_sources(self, value: Any, at: str) -> Any:
        return self._known_names(value, self.catalog.sources, "source", at)

    def _check_topic(self, value: Any, at: str) -> Any:
        return self._id_or_none(value, self.catalog.topics, "topic", at)

    def _check_entry(self, value: Any, at: str) -> Any:
        return self._id_or_none(value, self.catalog.entries, "entry", at)

    def _id_or_none(self, value: Any, known: frozenset[str], what: str, at: str) -> Any:
        if value is None:
            return NONE
        if not isinstance(value, str):
            self.problem(f"{at}needs a {what} id or none")
            return _INVALID
        if value != NONE:
            self._known(value, known, what, at)
        return value

    def _check_intent(self, value: Any, at: str) -> Any:
        return self._known_names(value, self.catalog.intents, "intent", at)

    def _check_min_confidence(self, value: Any, at: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            self.problem(f"{at}needs a number from 0 to 1")
            return _INVALID
        return float(value)

    def _check_red_flag(self, value: Any, at: str) -> Any:
        value = NONE if value is None else value
        if value not in (*RED_FLAG_LEVELS, NONE):
            self.problem(f"{at}needs one of {', '.join(RED_FLAG_LEVELS)} or none")
            return _INVALID
        return value

    def _check_action_executed(self, value: Any, at: str) -> Any:
        if not isinstance(value, str):
            self.problem(f"{at}needs an action name")
            return _INVALID
        self._known(value, self.catalog.actions, "action", at)
        return value

    def _check_bot_uttered(self, value: Any, at: str) -> Any:
        if not isinstance(value, dict) or not value or set(value) - set(BOT_UTTERED_KEYS):
            self.problem(f"{at}needs a mapping of {', '.join(BOT_UTTERED_KEYS)}")
            return _INVALID
        if "utter_name" in value:
            self._known(str(value["utter_name"]), self.catalog.responses, "response", at)
        if "text_matches" in value and not self._pattern(str(value["text_matches"]), "text_matches", at):
            return _INVALID
        if "buttons" in value and _as_str_list(value["buttons"]) is None:
            self.problem(f"{at}'buttons' needs a list of titles")
            return _INVALID
        return value


_INVALID = object()


def _close(given: str, known: Iterable[str]) -> list[str]:
    """Up to three known names like ``given``, for 'did you mean' hints."""
    return difflib.get_close_matches(given, sorted(known), n=3, cutoff=0.75)


SHARED = "_fixtures.yml"
"""A file of ``fixtures`` and ``metadata`` that every test file in its folder (and below)
may use, so a clinic fixture is written once."""


def _parse(path: Path) -> tuple[Any, list[str]]:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader), []
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}: cannot be read ({exc})"]
    except yaml.YAMLError as exc:
        return None, [f"{path}: not valid YAML ({exc})"]


def _definitions(raw: dict[str, Any], path: Path, catalog: Catalog, problems: list[str],
                 ) -> tuple[dict[str, Fixture], dict[str, dict[str, Any]]]:
    """The ``fixtures`` and ``metadata`` blocks of a parsed file, checked."""
    fixtures: dict[str, Fixture] = {}
    for name, body in _named_blocks(raw.get("fixtures"), f"{path}: fixtures", problems).items():
        fixture = _fixture(name, body, path, catalog, problems)
        if fixture is not None:
            fixtures[name] = fixture
    metadata = _named_blocks(raw.get("metadata"), f"{path}: metadata", problems)
    for name, body in metadata.items():
        unknown = sorted(set(body) - set(METADATA_KEYS))
        if unknown:
            problems.append(f"{path}: metadata '{name}': unknown key(s) {', '.join(unknown)}; "
                            f"known: {', '.join(METADATA_KEYS)}")
    return fixtures, metadata


def shared_definitions(path: Path, catalog: Catalog, problems: list[str],
                       ) -> tuple[dict[str, Fixture], dict[str, dict[str, Any]]]:
    """The fixtures and metadata of every ``_fixtures.yml`` in the folders holding ``path``
    (the nearest wins), for the test file ``path``."""
    fixtures: dict[str, Fixture] = {}
    metadata: dict[str, dict[str, Any]] = {}
    for folder in reversed(path.resolve().parents):
        shared = folder / SHARED
        if not shared.is_file():
            continue
        raw, found = _parse(shared)
        problems.extend(found)
        if raw is None:
            continue
        if not isinstance(raw, dict) or set(raw) - {"fixtures", "metadata", "__line__"}:
            problems.append(f"{shared}: may hold only 'fixtures' and 'metadata'")
            continue
        more_fixtures, more_metadata = _definitions(raw, shared, catalog, problems)
        fixtures.update(more_fixtures)
        metadata.update(more_metadata)
    return fixtures, metadata


def read_file(path: Path, catalog: Catalog) -> tuple[list[TestCase], list[str]]:
    """The test cases of one file, and every problem found in it.

    Fixtures and metadata come from the file and from the ``_fixtures.yml`` files of its
    folders; a name defined in both is a mistake (which one would apply is not obvious).
    """
    raw, problems = _parse(path)
    if problems:
        return [], problems
    if not isinstance(raw, dict) or "test_cases" not in raw:
        return [], [f"{path}: needs a top-level 'test_cases:' list"]
    unknown = sorted(set(raw) - set(TOP_KEYS) - {"__line__"})
    if unknown:
        problems.append(f"{path}: unknown top-level key(s) {', '.join(unknown)}; known: {', '.join(TOP_KEYS)}")
    fixtures, metadata = shared_definitions(path, catalog, problems)
    own_fixtures, own_metadata = _definitions(raw, path, catalog, problems)
    for name in sorted(set(own_fixtures) & set(fixtures)):
        problems.append(f"{path}: fixture '{name}' is also defined in a {SHARED}: rename one")
    for name in sorted(set(own_metadata) & set(metadata)):
        problems.append(f"{path}: metadata '{name}' is also defined in a {SHARED}: rename one")
    fixtures.update(own_fixtures)
    metadata.update(own_metadata)
    cases_raw = raw["test_cases"]
    if not isinstance(cases_raw, list) or not cases_raw:
        problems.append(f"{path}: 'test_cases' must be a list with at least one test case")
        return [], problems
    cases: list[TestCase] = []
    for index, item in enumerate(cases_raw):
        case = _CaseReader(path, catalog, fixtures, metadata, problems).read(item, index)
        if case is not None:
            cases.append(case)
    return cases, problems


def _fixture(name: str, body: dict[str, Any], path: Path, catalog: Catalog,
             problems: list[str]) -> Fixture | None:
    where = f"{path}: fixture '{name}'"
    unknown = sorted(set(body) - set(FIXTURE_KEYS))
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(FIXTURE_KEYS)}")
        return None
    consent = body.get("consent")
    if consent is not None and not isinstance(consent, bool):
        problems.append(f"{where}: 'consent' must be true or false")
        return None
    clinic = body.get("clinic")
    if clinic is not None:
        if not isinstance(clinic, dict) or not isinstance(clinic.get("name"), str):
            problems.append(f"{where}: 'clinic' must be a mapping of clinic.yml fields with a 'name'")
            return None
        bad = sorted(set(clinic) - catalog.clinic_fields) if catalog.clinic_fields else []
        if bad:
            problems.append(f"{where}: unknown clinic field(s) {', '.join(bad)}; "
                            f"known: {', '.join(sorted(catalog.clinic_fields))}")
            return None
    return Fixture(name=name, consent=consent, clinic=clinic)


def load(paths: list[Path], catalog: Catalog) -> list[TestCase]:
    """Every test case of ``paths`` (files, or folders searched for ``*.yml``), checked.

    Raises :class:`FormatError` listing every problem in every file; names must be unique
    across the whole suite.
    """
    problems: list[str] = []
    cases: list[TestCase] = []
    for path in collect(paths, problems):
        found, file_problems = read_file(path, catalog)
        cases.extend(found)
        problems.extend(file_problems)
    seen: dict[str, TestCase] = {}
    for case in cases:
        if case.name in seen:
            first = seen[case.name]
            problems.append(f"{case.file}:{case.line}: test '{case.name}': the name is already "
                            f"used in {first.file}:{first.line}")
        seen.setdefault(case.name, case)
    if problems:
        raise FormatError(problems)
    return cases


def collect(paths: list[Path], problems: list[str]) -> list[Path]:
    """The test files named, or found under the folders named (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(p for p in sorted(path.rglob("*.yml")) if _collected(p))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    return files


def _collected(path: Path) -> bool:
    return not path.name.startswith("_") and not path.name.endswith(".draft.yml")
