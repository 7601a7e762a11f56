"""How much of the conversation Rasa sends the action server with an action call.

With every call Rasa sends the conversation's state (slots, latest message, active loop,
latest action) and, by default, every event of the conversation so far: building, sending and
reading that grows with the conversation. Most actions read only the state, or look back no
further than the user's previous message (a follow-up such as "the second one" is read
against the reply before it). Those actions are named in :data:`RECENT_HISTORY_ACTIONS`:
Rasa sends them the events from the user's previous message on (:func:`first_recent`), the
state in full (``bot.process_tuning.recent_action_history``). Every other action gets every
event: the summary, the checklist's consent record and the details form read the whole
conversation.

An action is listed only when it reads nothing older; ``tests/actions/test_recent_history.py``
runs each listed action on long conversations, whole and cut, and expects the same reply.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

RECENT_USER_MESSAGES = 2
"""User messages whose events a listed action receives: the latest and the one before it."""

RECENT_HISTORY_ACTIONS = frozenset({
    "action_answer_question",
    "action_default_fallback",
    "action_out_of_scope",
    "action_disclosure",
    "action_clinic_contact",
    "action_estimate_cost",
    "action_other_language",
    "action_decline_request",
    "action_red_flag",
})
"""Actions that read no event older than the user's previous message."""

USER_EVENT = "user"
"""The type name of a user message event (Rasa's ``UserUttered.type_name``)."""

E = TypeVar("E")


def first_recent(events: Sequence[E], kind: Callable[[E], str]) -> int:
    """Index of the first event a listed action receives: the user's previous message (the
    :data:`RECENT_USER_MESSAGES`-th user event from the end); 0 when there are fewer.
    ``events`` may be a list or a deque; ``kind`` gives an event's type name."""
    users = 0
    for back, event in enumerate(reversed(events)):
        if kind(event) == USER_EVENT:
            users += 1
            if users == RECENT_USER_MESSAGES:
                return len(events) - 1 - back
    return 0
