"""Rasa's messages in the public shape: one reply batch at a time.

A batch is what the assistant sent in answer to one message (or the opening messages).
Live replies (``crud.store_replies``) and the history rebuilt from Rasa's tracker
(``api.history``) go through :func:`present`, so both show a batch the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from api import schemas
from api.rasa_client import RasaMessage
from contract.levels import RedFlagLevel, most_severe


def to_public(
    message: RasaMessage, *, red_flag: RedFlagLevel | None = None, summary_url: str | None = None
) -> schemas.Message:
    """Map one Rasa message to the public Message shape."""
    custom = message.custom
    return schemas.Message(
        text=message.text or "",
        buttons=[schemas.Button(title=b.title, payload=b.payload) for b in message.buttons or []],
        sources=[
            schemas.Source(id=s.id, title=s.title, url=s.url)
            for s in (custom.sources if custom else [])
        ],
        topic=custom.topic if custom else None,
        entry=custom.entry_id if custom else None,
        red_flag=red_flag,
        summary_url=summary_url,
        figures=[
            schemas.Figure(per_100=f.per_100, label=f.label, alt=f.alt)
            for f in (custom.figures if custom else [])
            if f.per_100 is not None and f.label and f.alt
        ],
    )


def batch_red_flag(messages: Sequence[RasaMessage]) -> RedFlagLevel | None:
    """The most severe red-flag level any message of the batch carries."""
    return most_severe(
        *(m.custom.red_flag.level for m in messages if m.custom and m.custom.red_flag)
    )


@dataclass
class Shown:
    """A message of a batch that has something to show, and how the public sees it."""

    source: RasaMessage
    public: schemas.Message


def present(messages: Sequence[RasaMessage], *, summary_link: str | None) -> list[Shown]:
    """The messages of one batch there is something to show, in order.

    Every one carries the batch's red-flag level. A message with neither text nor buttons is
    left out; when it carried a summary, the next shown message (or, if none follows, the
    last one) offers it with ``summary_link`` (None: offer no summary).
    """
    level = batch_red_flag(messages)
    shown: list[Shown] = []
    summary_pending = False
    for message in messages:
        if message.custom is not None and message.custom.summary is not None:
            summary_pending = summary_link is not None
        if message.is_empty:
            continue
        link = summary_link if summary_pending else None
        shown.append(Shown(message, to_public(message, red_flag=level, summary_url=link)))
        summary_pending = False
    if summary_pending and shown:
        shown[-1].public.summary_url = summary_link
    return shown
