"""What the assistant made of a turn, for conversation tests holding the test key.

A patient's browser never gets this: only a caller whose ``X-Meso-Test-Key`` header equals
the deployment's ``MESO_TEST_KEY`` (compared in constant time; an empty key disables it).
The intent and confidence come with Rasa's reply; the actions, responses and slots are read
from the turn's events in Rasa's tracker, one extra request made only for such a caller.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from fastapi import Request

from api.rasa_client import RasaClient, RasaEvent, RasaNlu
from api.schemas import TEST_KEY_HEADER, Understanding
from api.settings import Settings

ACTION_LISTEN = "action_listen"


def holds_test_key(request: Request, settings: Settings) -> bool:
    """True when the request carries the deployment's (non-empty) test key."""
    key = settings.test_key.get_secret_value()
    given = request.headers.get(TEST_KEY_HEADER, "")
    return bool(key) and hmac.compare_digest(given.encode(), key.encode())


def _shows_something(event: dict[str, Any]) -> bool:
    """Whether the API shows this bot event as a message (``RasaMessage.is_empty`` decides)."""
    message = RasaEvent.model_validate(event).bot_message("test")
    return message is not None and not message.is_empty


def of_turn(events: Iterable[dict[str, Any]], nlu: RasaNlu | None) -> Understanding:
    """The understanding of the latest turn: the events after the last ``user`` event.

    ``responses`` lines up with the messages the API shows (a bot event with neither text
    nor buttons is not shown, so it has no entry).
    """
    turn: list[dict[str, Any]] = []
    for event in events:
        if event.get("event") == "user":
            turn.clear()
        else:
            turn.append(event)
    actions, responses, slots = [], [], {}
    for event in turn:
        kind = event.get("event")
        if kind == "action" and event.get("name") and event["name"] != ACTION_LISTEN:
            actions.append(str(event["name"]))
        elif kind == "bot" and _shows_something(event):
            name = (event.get("metadata") or {}).get("utter_action")
            responses.append(name if isinstance(name, str) else None)
        elif kind == "slot" and isinstance(event.get("name"), str):
            slots[event["name"]] = event.get("value")
    return Understanding(
        intent=nlu.intent if nlu else None,
        confidence=nlu.confidence if nlu else None,
        actions=actions,
        responses=responses,
        slots=slots,
    )


async def read(rasa: RasaClient, conversation_id: str, nlu: RasaNlu | None) -> Understanding:
    """The latest turn's understanding (raises ``AssistantUnavailable`` like any Rasa call)."""
    return of_turn(await rasa.raw_events(conversation_id), nlu)
