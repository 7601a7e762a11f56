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
* :func:`tail_rule_states`: before each prediction the rule policy turns the whole
  conversation into states, one per action so far, twice a turn, though rule matching only
  ever compares the last few (no rule is longer): the larger part of a late turn's growth.
  The same states for the last turns any rule can reach, the earlier ones stood for by one
  marker state that no rule contains (the same predictions); the conversation is replayed
  only from where the last prediction left it (:class:`_TailReplay`, which the tracker
  store carries from one turn to the next).
* :func:`recent_action_history`: with every call of a custom action Rasa sends every event
  of the conversation as JSON, which the action server parses back: both grow with the
  conversation. The actions of ``contract.action_history.RECENT_HISTORY_ACTIONS`` read
  nothing older than the user's previous message: they get the events from there on, the
  rest of the call as Rasa makes it.
* :func:`incremental_applied_events`: Rasa works out a tracker's applied events (what
  reverts, restarts and loops leave standing) from its first event each time it is asked,
  four times a turn here (the session check twice, each rule prediction): it grows with the
  conversation. The same fold, kept on the tracker and continued over the events appended
  since; started over when the events are not the ones folded, or a new loop appears.
* :func:`copy_trackers_by_state`: Rasa copies the tracker before running each action (twice a
  turn: the answer and the listen after it) by replaying every event of the conversation
  into a new one: it grows with the conversation. The same copy made from the tracker's
  state (its events, slots, loop and latest messages) without the replay; Rasa's replay
  where the two could differ (events dropped by a capped history, slots made on demand).
* :func:`cache_event_types`: Rasa finds each stored event's class by walking every
  subclass of ``Event`` (``Event.resolve_by_type``), for every event of the conversation on
  every turn: the larger part of reading a long conversation back. The same lookup,
  remembered per type name.
* :func:`freeze_after_agent_load`, :func:`freeze_startup_objects`: a process holds about
  half a million objects once its model is loaded, all alive until it stops, and Python's
  full garbage collection walked every one of them: a pause of about a quarter of a
  second in Rasa, every few hundred turns, for every patient at once. Once loaded, they
  are moved out of the collector's sight (``gc.freeze``); what is made afterwards is
  collected as before (a full collection then took about 10 ms).
* :func:`prompt_gil_handoff`: Rasa runs on two threads, its event loop and the ``meso``
  channel's parse thread, which lets go of the interpreter while the encoder computes and
  then waits to take it back. A thread that wants the interpreter asks for it only after
  the switch interval, 5 ms by default, so each parse waited behind the event loop's work,
  and longer when the loop's thread was itself waiting for a core (the API and the action
  server share the machine): the parse thread set Rasa's pace. At 0.5 ms, under the
  50-user load in one stack, four runs each way: 65.3 to 71.7 msg/s through the API and
  72.4 to 74.4 at Rasa's webhook (0.2 ms measured no better than 0.5 ms).
"""

from __future__ import annotations

import copy
import gc
import itertools
import logging
import sys
from functools import lru_cache
from typing import Any, Dict, Iterable, Text

logger = logging.getLogger(__name__)

ACTION_SERVER_UNUSED = ("tensorflow", "jax", "jaxlib", "torch", "mxnet", "cupy")
"""Never used by the action server (spaCy runs its own CPU models)."""
GIL_SWITCH_INTERVAL_S = 0.0005
"""How long a thread runs before another that wants the interpreter gets it (Python: 5 ms)."""
RASA_UNUSED = ("jax", "jaxlib")
"""Never used by Rasa's server with our pipeline (TensorFlow itself Rasa imports everywhere)."""


def prompt_gil_handoff() -> None:
    """A thread waiting for the interpreter gets it after :data:`GIL_SWITCH_INTERVAL_S`."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


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


EARLIER_TURNS_ACTION = "meso_earlier_turns"
"""The previous action of the one state that stands for all turns rules cannot reach."""


def _rule_window(self: Any) -> int:
    """The most states any rule of the policy compares: its longest rule, in states."""
    from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH

    found = self.__dict__.get("_meso_rule_window")
    if found is None:
        keys = [*self.lookup.get(RULES, {}), *self.lookup.get(RULES_FOR_LOOP_UNHAPPY_PATH, {})]
        found = self.__dict__["_meso_rule_window"] = max(
            (len(self._rule_key_to_state(key)) for key in keys), default=0)
    return found


TAIL_REPLAY = "_meso_tail"
"""The tracker attribute holding its :class:`_TailReplay` (the tracker store carries it over
from one turn's tracker to the next turn's: ``bot.stores.tracker_store``)."""


def _same_event(one: Any, other: Any) -> bool:
    """The same event: the same object, or (read back from the database) the same type,
    time and content."""
    return one is other or (type(one) is type(other) and one.timestamp == other.timestamp
                            and one.as_dict() == other.as_dict())


class _TailReplay:
    """A conversation replayed up to some applied event, and its last states so far: kept on
    the tracker (attribute :data:`TAIL_REPLAY`) so that its next prediction replays only the
    events added since. Valid while the tracker's applied events still start with the ones
    replayed: events are only ever appended, an appended event can only take applied events
    out (a revert, a restart, a loop run again), and taking any out before the last one
    replayed moves another event into its place, which :meth:`extends` sees."""

    def __init__(self, tracker: Any, window: int) -> None:
        from collections import deque

        from rasa.shared.core.trackers import DialogueStateTracker

        # Replayed events are applied ones (no revert, restart or session start among
        # them): applying them reads no earlier event, so one event of history is kept.
        self.prior = DialogueStateTracker(tracker.sender_id, tracker.slots.values(), 1,
                                          is_rule_tracker=tracker.is_rule_tracker)
        self.window = window
        self.replayed = 0  # applied events replayed into ``prior``
        self.last_event: Any = None  # the last of them
        self.actions = 0  # states passed so far (one before each action)
        self.kept: Any = deque(maxlen=window)  # the last ``window`` of those states
        self.seen_events = -1  # the tracker's number of events at the last call
        self.seen_last: Any = None  # and its last event (the object)
        self.result: list = []

    def extends(self, applied: list) -> bool:
        return self.replayed == 0 or (len(applied) >= self.replayed
                                      and _same_event(applied[self.replayed - 1], self.last_event))

    def unchanged(self, tracker: Any) -> bool:
        """Whether ``tracker`` is as at the last call (no event added since)."""
        return len(tracker.events) == self.seen_events and bool(tracker.events) \
            and tracker.events[-1] is self.seen_last


def _state_copy(state: Dict[Text, Any]) -> Dict[Text, Any]:
    """A state the featurizer may change without touching ``state`` (sub-states are dicts
    of strings and tuples)."""
    return {kind: dict(sub) for kind, sub in state.items()}


def tail_states(domain: Any, tracker: Any, window: int) -> list:
    """``domain.states_for_tracker_history(tracker)`` (rule-policy settings: no slot
    omitted, no turn hidden) where only the last ``window`` states are computed.

    A conversation with more states than ``window + 1`` gets one marker state (previous
    action :data:`EARLIER_TURNS_ACTION`) in place of all the earlier ones; a shorter one gets
    exactly Rasa's states. The first call on a tracker replays its conversation from the
    start (slots at each turn depend on it); later calls on the same tracker replay only the
    events added since (:class:`_TailReplay`). Each call returns states of its own.
    """
    from rasa.shared.core.events import ActionExecuted

    replay = tracker.__dict__.get(TAIL_REPLAY)
    if replay is not None and replay.window == window and replay.unchanged(tracker):
        return [_state_copy(state) for state in replay.result]
    applied = tracker.applied_events()
    if replay is None or replay.window != window or not replay.extends(applied):
        replay = tracker.__dict__[TAIL_REPLAY] = _TailReplay(tracker, window)
    prior = replay.prior
    for event in itertools.islice(applied, replay.replayed, None):
        if isinstance(event, ActionExecuted):
            replay.kept.append(domain._clean_state(domain.get_active_state(prior)))
            replay.actions += 1
        prior.update(event)
    replay.replayed, replay.last_event = len(applied), applied[-1] if applied else None
    states = list(replay.kept) + [domain._clean_state(domain.get_active_state(prior))]
    if replay.actions > window:  # more states than window + 1: the earlier ones stood for
        states = [{"prev_action": {"action_name": EARLIER_TURNS_ACTION}}] + states[-window:]
    replay.result = states
    replay.seen_events, replay.seen_last = len(tracker.events), tracker.events[-1] if tracker.events else None
    return [_state_copy(state) for state in states]


_RASAS_PREDICTION_STATES: list[Any] = []


def _tail_prediction_states(self: Any, tracker: Any, domain: Any, use_text_for_last_user_input: bool = False,
                            rule_only_data: Any = None) -> list:
    """``Policy._prediction_states`` for the rule policy, with :func:`tail_states`: what
    its featurizer's ``prediction_states`` does (no turn of a rule policy is hidden)."""
    from rasa.core.featurizers.tracker_featurizers import MaxHistoryTrackerFeaturizer

    featurizer = self.featurizer
    if type(featurizer) is not MaxHistoryTrackerFeaturizer:
        return _RASAS_PREDICTION_STATES[0](self, tracker, domain, use_text_for_last_user_input, rule_only_data)
    states = featurizer.slice_state_history(tail_states(domain, tracker, _rule_window(self)),
                                            featurizer.max_history)
    featurizer._choose_last_user_input([states], use_text_for_last_user_input)
    return states


def tail_rule_states() -> None:
    """Give the rule policy only the states its rules can compare (same predictions)."""
    from rasa.core.policies.rule_policy import RulePolicy

    if not _RASAS_PREDICTION_STATES:
        _RASAS_PREDICTION_STATES.append(RulePolicy._prediction_states)
    RulePolicy._prediction_states = _tail_prediction_states  # type: ignore[method-assign]


_RASAS_CALL_FORMAT: list[Any] = []


def _recent_action_call_format(self: Any, tracker: Any, domain: Any) -> Dict[Text, Any]:
    """``RemoteAction._action_call_format``; for an action that reads only recent events,
    the tracker's events from the user's previous message on (everything else the same)."""
    import rasa
    from rasa.shared.core.trackers import EventVerbosity

    from contract.action_history import RECENT_HISTORY_ACTIONS, first_recent

    if self.name() not in RECENT_HISTORY_ACTIONS:
        return _RASAS_CALL_FORMAT[0](self, tracker, domain)
    state = tracker.current_state(EventVerbosity.NONE)  # the state in full, no events
    events = tracker.events
    state["events"] = [event.as_dict()
                       for event in itertools.islice(events, first_recent(events, lambda event: event.type_name), None)]
    result = {"next_action": self._name, "sender_id": tracker.sender_id, "tracker": state,
              "version": rasa.__version__}
    if not self._is_selective_domain_enabled() or domain.does_custom_action_explicitly_need_domain(self.name()):
        result["domain"] = domain.as_dict()
    return result


def recent_action_history() -> None:
    """Send the actions that read only recent events only those (the rest as Rasa does)."""
    from rasa.core.actions.action import RemoteAction

    if not _RASAS_CALL_FORMAT:
        _RASAS_CALL_FORMAT.append(RemoteAction._action_call_format)
    RemoteAction._action_call_format = _recent_action_call_format  # type: ignore[method-assign]


APPLIED_FOLD = "_meso_applied"
"""The tracker attribute holding its :class:`_AppliedFold`."""


class _AppliedFold:
    """Rasa's ``DialogueStateTracker.applied_events`` as a fold over the tracker's events,
    kept so that the next call folds only the events appended since.

    Rasa's loop, unchanged: a restart or a session start empties the applied events, a
    revert takes them back to an earlier action or message, and a loop's action that does
    not start it again takes them back to its previous run. The last rule reads the names of
    every loop of the conversation, later events included: an appended event that names a
    loop not seen yet changes how earlier events fold, so the fold starts over."""

    def __init__(self, events: Any) -> None:
        from rasa.shared.core.events import ActiveLoop

        self.events = events  # the tracker's deque, as folded
        self.count = 0  # events folded
        self.last: Any = None  # the last of them (the object)
        self.loop_names = {e.name for e in events if isinstance(e, ActiveLoop) and e.name}
        self.applied: list = []

    def holds(self, events: Any) -> bool:
        """Whether ``events`` are the events folded, perhaps with more appended."""
        return events is self.events and len(events) >= self.count and (
            self.count == 0 or events[self.count - 1] is self.last)

    def fold(self, tracker: Any, new: list) -> None:
        from rasa.shared.core.events import (
            ActionExecuted, ActionReverted, Restarted, SessionStarted, UserUttered, UserUtteranceReverted,
        )

        applied, loop_names = self.applied, self.loop_names
        for event in new:
            if isinstance(event, (Restarted, SessionStarted)):
                applied.clear()
            elif isinstance(event, ActionReverted):
                tracker._undo_till_previous(ActionExecuted, applied)
            elif isinstance(event, UserUtteranceReverted):
                tracker._undo_till_previous(UserUttered, applied)
                tracker._undo_till_previous(ActionExecuted, applied)
            elif (isinstance(event, ActionExecuted) and event.action_name in loop_names
                  and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied)):
                tracker._undo_till_previous_loop_execution(event.action_name, applied)
            else:
                applied.append(event)
        self.count += len(new)
        if new:
            self.last = new[-1]


def _incremental_applied_events(self: Any) -> list:
    """``DialogueStateTracker.applied_events``, continued from the last call on this tracker
    (:class:`_AppliedFold`); each call returns a list of its own."""
    from rasa.shared.core.events import ActiveLoop

    events = self.events
    fold = self.__dict__.get(APPLIED_FOLD)
    new = list(itertools.islice(events, fold.count, None)) if fold is not None and fold.holds(events) else None
    if new is None or any(isinstance(e, ActiveLoop) and e.name and e.name not in fold.loop_names for e in new):
        fold = self.__dict__[APPLIED_FOLD] = _AppliedFold(events)
        new = list(events)
    fold.fold(self, new)
    return list(fold.applied)


def incremental_applied_events() -> None:
    """Work out a tracker's applied events from where the last call left them."""
    from rasa.shared.core.trackers import DialogueStateTracker

    DialogueStateTracker.applied_events = _incremental_applied_events  # type: ignore[method-assign]


def _shallow_copy(obj: Any) -> Any:
    """``copy.copy(obj)`` for an object whose state is its ``__dict__`` (a slot), made directly."""
    cls = type(obj)
    if cls.__reduce_ex__ is not object.__reduce_ex__ or hasattr(cls, "__copy__") or hasattr(cls, "__slots__"):
        return copy.copy(obj)
    new = object.__new__(cls)
    new.__dict__.update(obj.__dict__)
    return new


def _latest(message: Any, events: Any) -> Any:
    """The copy's latest user (or bot) message: the same object when it is one of the events,
    as a replay gives; else (an empty one that a reset made, perhaps since given entities) a
    copy of its own, as the replay's reset makes its own."""
    for event in reversed(events):  # usually among the last few
        if event is message:
            return message
    return copy.deepcopy(message)


def _copy_by_state(self: Any) -> Any:
    """``DialogueStateTracker.copy`` made from the tracker's state instead of a replay of its
    events; the same tracker as Rasa's copy makes (``tests/rasa_project/test_tracker_copy.py``).

    As Rasa's copy (``init_copy`` and a replay): the events are the same objects in a deque
    of their own, each slot a copy of its own, the latest messages the same event objects
    (or copies of the empty ones a reset made), the active loop a copy of its own, and
    neither model id nor assistant id nor sender source is carried over. Where a replay would not give back the tracker's state, Rasa's
    copy is made: a capped history that has dropped events, or slots made on demand
    (``AnySlotDict``)."""
    from rasa.shared.constants import DEFAULT_SENDER_ID
    from rasa.shared.core.trackers import AnySlotDict, DialogueStateTracker

    events = self.events
    capped = self._max_event_history is not None and len(events) >= self._max_event_history
    if capped or isinstance(self.slots, AnySlotDict) or type(self.slots) is not dict:
        return self.travel_back_in_time(float("inf"))  # Rasa's copy
    tracker = DialogueStateTracker(self.sender_id or DEFAULT_SENDER_ID, None, self._max_event_history,
                                   is_rule_tracker=self.is_rule_tracker)  # init_copy's, slots apart
    tracker.events.extend(events)
    tracker.slots = {name: _shallow_copy(slot) for name, slot in self.slots.items()}
    tracker._paused = self._paused
    tracker.followup_action = self.followup_action
    tracker.latest_action = None if self.latest_action is None else dict(self.latest_action)
    tracker.latest_message = _latest(self.latest_message, events)
    tracker.latest_bot_utterance = _latest(self.latest_bot_utterance, events)
    tracker.active_loop = None if self.active_loop is None else copy.copy(self.active_loop)
    return tracker


def copy_trackers_by_state() -> None:
    """Copy a tracker from its state, not by replaying its events (:func:`_copy_by_state`)."""
    from rasa.shared.core.trackers import DialogueStateTracker

    DialogueStateTracker.copy = _copy_by_state  # type: ignore[method-assign]


def freeze_startup_objects() -> int:
    """Collect, then move every object alive now out of the garbage collector's sight
    (``gc.freeze``): call once the process has loaded what it keeps until it stops.
    Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("%d objects loaded at start kept out of full garbage collections", frozen)
    return frozen


def freeze_after_agent_load() -> None:
    """Rasa: :func:`freeze_startup_objects` once its server has loaded the agent (the model),
    in the listener ``rasa.core.run`` registers for the server's start."""
    import rasa.core.run as run

    load = run.load_agent_on_start
    if getattr(load, "freezes_after", False):
        return

    async def load_then_freeze(*args: Any, **kwargs: Any) -> Any:
        agent = await load(*args, **kwargs)
        freeze_startup_objects()
        return agent

    load_then_freeze.freezes_after = True  # type: ignore[attr-defined]
    run.load_agent_on_start = load_then_freeze
