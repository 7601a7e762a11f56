"""What the bot processes change about the libraries they run on, for speed and memory.

Applied once, at the start of a process, by its launcher (``bot.rasa_server``,
``bot.action_server``); importing this module changes nothing.

* :func:`skip_unused_frameworks`: Rasa installs TensorFlow, JAX and friends. spaCy's
  thinc imports TensorFlow (with JAX behind it) merely because it is installed, and
  TensorFlow Lite imports JAX the same way: hundreds of megabytes resident in a process
  that never calls them. Marking a package absent in ``sys.modules`` makes those optional
  imports take their "not installed" path.
* :func:`cache_action_result_check`: Rasa checks every action server reply against a JSON
  schema with ``jsonschema.validate``, which first re-checks the schema itself against the
  meta-schema: about 20 ms of CPU a turn. The same check with the validator built once.
* :func:`narrow_rule_matching`: Rasa's rule policy, to find the rules that match a
  conversation, compares every rule (about 400 here) with the current state, then walks
  back over every state of the conversation, though a rule can only be ruled out by its
  own few last states: the walk grows with the conversation. The same matching, starting
  from the rules that can match the current state and stopped where no remaining rule has
  a state left to compare (the same rules are found).
* :func:`cache_event_types`: Rasa finds each stored event's class by walking every
  subclass of ``Event`` (``Event.resolve_by_type``), for every event of the conversation on
  every turn: the larger part of reading a long conversation back. The same lookup,
  remembered per type name.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any, Dict, Iterable, Text

ACTION_SERVER_UNUSED = ("tensorflow", "jax", "jaxlib", "torch", "mxnet", "cupy")
"""Never used by the action server (spaCy runs its own CPU models)."""
RASA_UNUSED = ("jax", "jaxlib")
"""Never used by Rasa's server with our pipeline (TensorFlow itself Rasa imports everywhere)."""


def skip_unused_frameworks(names: Iterable[str]) -> list[str]:
    """Mark the packages ``names`` absent for this process, unless already imported.

    Returns the names marked. Call it before anything imports them."""
    marked = []
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]  # `import name` -> ImportError
            marked.append(name)
    return marked


@lru_cache(maxsize=1)
def _action_result_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator = validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def _validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
    """Rasa's ``RemoteAction._validate_action_result`` with the validator built once:
    the same schema, the same best error raised, the same message added."""
    from jsonschema.exceptions import best_match

    from rasa.shared.constants import DOCS_BASE_URL

    error = best_match(_action_result_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        f". Failed to validate Action server response from API, "
        f"make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    raise error


def cache_action_result_check() -> None:
    """Replace Rasa's per-reply schema check of the action server by the cached one."""
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]


_EVENT_TYPES: dict[str, Any] = {}
_RASAS_RESOLVE: list[Any] = []


def _resolve_by_type(type_name: Text, default: Any = None) -> Any:
    """Rasa's ``Event.resolve_by_type``, remembered: the first subclass of ``Event`` with
    that type name (as Rasa's walk finds it); anything else is Rasa's own answer."""
    found = _EVENT_TYPES.get(type_name)
    if found is None:
        from rasa.shared.core.events import Event
        from rasa.shared.utils.common import all_subclasses

        for cls in all_subclasses(Event):  # classes defined since the last miss
            _EVENT_TYPES.setdefault(cls.type_name, cls)
        found = _EVENT_TYPES.get(type_name)
    if found is None:
        return _RASAS_RESOLVE[0](type_name, default)
    return found


def cache_event_types() -> None:
    """Replace Rasa's walk over ``Event`` subclasses by the remembered lookup."""
    from rasa.shared.core.events import Event

    if not _RASAS_RESOLVE:
        _RASAS_RESOLVE.append(Event.resolve_by_type)
    Event.resolve_by_type = staticmethod(_resolve_by_type)  # type: ignore[method-assign]


def _required(state: Dict[Text, Any], kind: Text, feature: Text) -> Any:
    """The value ``state`` must match exactly for ``kind``'s ``feature`` (Rasa's
    ``_does_rule_match_state``), or None when it sets none."""
    from rasa.shared.core.constants import SHOULD_NOT_BE_SET

    value = (state.get(kind) or {}).get(feature)
    return value if isinstance(value, str) and value and value != SHOULD_NOT_BE_SET else None


def _rule_index(self: Any, lookup: Dict[Text, Text]) -> Dict[Any, Dict[Any, set]]:
    """The rules of ``lookup`` by what their last state requires of the conversation's
    current state: the previous action's name and the user's intent (``None``: nothing).
    A conversation-start rule (no previous action) requires neither here."""
    cache = self.__dict__.setdefault("_meso_rule_index", {})
    found = cache.get(id(lookup))
    if found is not None and found[0] is lookup and found[1] == len(lookup):
        return found[2]
    index: Dict[Any, Dict[Any, set]] = {}
    for key in lookup:
        last = self._rule_key_to_state(key)[-1]
        if last.get("prev_action"):
            action, intent = _required(last, "prev_action", "action_name"), _required(last, "user", "intent")
        else:
            action = intent = None
        index.setdefault(action, {}).setdefault(intent, set()).add(key)
    cache[id(lookup)] = (lookup, len(lookup), index)
    return index


def _possible_rule_keys(self: Any, lookup: Dict[Text, Text], states: list) -> set:
    """Rasa's ``RulePolicy._get_possible_keys`` with the same result, cheaper:

    * the current state is compared only with the rules whose last state could match it
      (same previous action and intent, or none required): a rule whose last state names
      another previous action or intent fails Rasa's own comparison;
    * the walk back stops once it is longer than every remaining rule
      (``_is_rule_applicable`` is true for all of them from there on).
    """
    if not states:
        return set(lookup.keys())
    current = states[-1]
    if current.get("prev_action"):
        index = _rule_index(self, lookup)
        action = _required(current, "prev_action", "action_name")
        intent = _required(current, "user", "intent")
        possible: set = set()
        for by_action in (index.get(None), index.get(action) if action else None):
            for bucket in ((by_action or {}).get(None), (by_action or {}).get(intent) if intent else None):
                possible |= bucket or set()
    else:
        possible = set(lookup.keys())
    longest = max((len(self._rule_key_to_state(key)) for key in possible), default=0)
    for i, state in enumerate(reversed(states)):
        if i >= longest or not possible:
            break
        possible = {key for key in possible if self._is_rule_applicable(key, i, state)}
        longest = max((len(self._rule_key_to_state(key)) for key in possible), default=0)
    return possible


def narrow_rule_matching() -> None:
    """Replace the rule policy's matching by the narrowed one (same rules found)."""
    from rasa.core.policies.rule_policy import RulePolicy

    RulePolicy._get_possible_keys = _possible_rule_keys  # type: ignore[method-assign]
