"""The conversation so far in the public shape, to redraw the chat after a page reload.

Two sources: the API's own rows (a conversation with transcript consent) or, without
consent, Rasa's tracker, the only copy of what was said. Either way a patient's button
press shows the button's title, and every assistant message carries the red-flag level of
its turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from api import models, schemas
from api.rasa_client import RasaEvent, RasaMessage
from contract import commands
from contract.levels import RedFlagLevel
from api.replies import present

START_COMMAND = commands.START_COMMAND
"""Sent to Rasa (as a trusted command, with entities) to get a new conversation's opening
messages; never shown as the patient's."""

Turn = str | list[RasaMessage]
"""A patient's text, or one batch of the assistant's messages (at least one to show)."""


def _turns(events: Iterable[RasaEvent], conversation: str) -> list[Turn]:
    """The tracker's user and bot events as patient texts and reply batches, in order.

    A batch that has nothing to show (the assistant failed to answer) is left out, so the
    buttons of the batch before it stay the ones on offer.
    """
    turns: list[Turn] = []
    batch: list[RasaMessage] = []

    def close_batch() -> None:
        if any(not m.is_empty for m in batch):
            turns.append(list(batch))
        batch.clear()

    for event in events:
        if event.event == "user":
            close_batch()
            turns.append(event.text or "")
        elif event.event == "bot":
            message = event.bot_message(conversation)
            if message is not None:
                batch.append(message)
    close_batch()
    return turns


def _buttons(batch: Sequence[RasaMessage]) -> list[schemas.Button]:
    return [
        schemas.Button(title=b.title, payload=b.payload) for m in batch for b in m.buttons or []
    ]


def offered_buttons(events: Iterable[RasaEvent], conversation: str) -> list[schemas.Button]:
    """The buttons of the assistant's latest reply that had something to show."""
    batches = [turn for turn in _turns(events, conversation) if isinstance(turn, list)]
    return _buttons(batches[-1]) if batches else []


def may_be_press(text: str) -> bool:
    """Whether ``text`` could be a button press: every payload is a command
    (``contract.commands``), so other text needs no look at the buttons on offer."""
    return text.startswith(commands.PREFIX)


def press_title(text: str, offered: Iterable[schemas.Button]) -> str | None:
    """The title of the offered button whose payload ``text`` is; None for other text."""
    return next((b.title for b in offered if b.payload == text), None)


def from_tracker(
    events: Iterable[RasaEvent], conversation: str, *, summary_link: str | None
) -> list[schemas.Message]:
    """Rebuild the conversation from Rasa's events (``conversation``: a short id for logs).

    ``summary_link`` is the summary's URL when one is stored (messages that offered a
    summary link to it), else None.
    """
    history: list[schemas.Message] = []
    offered: list[schemas.Button] = []
    for turn in _turns(events, conversation):
        if isinstance(turn, list):
            history.extend(shown.public for shown in present(turn, summary_link=summary_link))
            offered = _buttons(turn)
        elif not turn.startswith(START_COMMAND):
            title = press_title(turn, offered)
            history.append(schemas.Message(role="patient", text=title or turn))
    return history


def stored_reply(
    row: models.Message,
    *,
    red_flag: RedFlagLevel | None,
    summary_link: str,
    with_feedback: bool,
) -> schemas.Message:
    """A stored assistant message as it was sent (``red_flag``: its turn's level)."""
    return schemas.Message(
        id=str(row.seq),
        text=row.text,
        buttons=[schemas.Button.model_validate(b) for b in row.buttons or []],
        sources=[schemas.Source.model_validate(s) for s in row.sources or []],
        topic=row.topic,
        entry=row.entry_id,
        red_flag=red_flag,
        summary_url=summary_link if row.offers_summary else None,
        feedback=row.feedback if with_feedback else None,  # type: ignore[arg-type]
    )


def from_rows(rows: Iterable[models.Message], *, summary_link: str) -> list[schemas.Message]:
    """The stored messages (in ``seq`` order) in the public shape, ratings included."""
    history: list[schemas.Message] = []
    level: RedFlagLevel | None = None
    for row in rows:
        if row.role == "patient":
            level = row.red_flag  # type: ignore[assignment]
            history.append(
                schemas.Message(
                    id=str(row.seq), role="patient", text=row.button_title or row.text.strip()
                )
            )
        else:
            history.append(
                stored_reply(row, red_flag=level, summary_link=summary_link, with_feedback=True)
            )
    return history
