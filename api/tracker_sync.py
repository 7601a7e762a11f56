"""The API's transcript and Rasa's tracker, brought back into agreement after a failed turn.

When the API stops waiting for Rasa (its timeout, an error, an empty reply) the patient's
message is marked ``tracker_pending``: Rasa may still answer it later, or may never have
seen it. Each message is sent with its own ``message_id`` (:func:`message_id`), which Rasa's
tracker keeps on the user event. At the next contact with the conversation (a message, a
retry, a reload of the history), under the conversation's lock, the API reads the tracker
once and settles each marked message (:func:`settle`):

* Rasa answered it late and the patient got no answer: the late reply becomes the stored
  answer, so a reload shows it and a retry gets it instead of asking Rasa a second time.
* Rasa answered it and the safety net had answered too: each side keeps the one reply it
  has (the patient saw the safety net's); one turn on each side.
* Rasa never saw it and the safety net answered: the turn is appended to the tracker (the
  words, the red-flag intent and the replies as sent), so the bot's next answer knows it.
* Rasa never saw it and nobody answered: nothing to do; a retry sends it.
* Rasa saw it but sent nothing (an action failed): nothing to store; a retry sends it again.

Only conversations with transcript consent have messages here; without consent Rasa's
tracker is the conversation's only copy, so there is nothing to disagree with.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api import crud
from api.crud import ConversationState, PatientMessage
from api.models import short_id
from contract import channel
from api.rasa_client import AssistantUnavailable, RasaClient, RasaReply, find_turn

logger = logging.getLogger(__name__)

SETTLE_TIMEOUT = 0.5
"""Seconds the tracker read may take: milliseconds when Rasa is well; when it is not, the
patient's message must not wait for it (the marks stay for the next contact)."""
RED_FLAG_REPLY = "utter_red_flag"


def message_id(patient: PatientMessage) -> str:
    """The name of ``patient``'s turn in Rasa's tracker (stable across retries)."""
    return f"m{patient.id}"


async def _answered_turn(
    session: AsyncSession, patient: PatientMessage, summary_link: str
) -> list[dict[str, Any]]:
    """The events of a turn the safety net answered, as Rasa would have logged them."""
    user = {
        "event": "user",
        "text": patient.text,
        "parse_data": {
            "text": patient.text,
            "intent": {"name": patient.intent, "confidence": patient.intent_confidence},
            "entities": [],
        },
        "message_id": message_id(patient),
        "input_channel": channel.NAME,
    }
    events: list[dict[str, Any]] = [user, {"event": "action", "name": RED_FLAG_REPLY}]
    for index, reply in enumerate(await crud.stored_replies(session, patient, summary_link=summary_link)):
        custom = {"red_flag": {"level": patient.red_flag, "flags": patient.red_flag_names or []}}
        data: dict[str, Any] = {"buttons": [b.model_dump() for b in reply.buttons] or None}
        if index == 0 and patient.red_flag:
            data["custom"] = custom
        events.append({"event": "bot", "text": reply.text, "data": data})
    events.append({"event": "action", "name": "action_listen"})
    return events


async def settle(
    session: AsyncSession, rasa: RasaClient, conversation: ConversationState, *,
    summary_link: str,
) -> int:
    """Settle the conversation's marked messages against Rasa's tracker; how many were.

    ``summary_link`` is the summary's current link, for replies that offered it.

    Reads the tracker only when a message is marked. When Rasa cannot be asked, the marks
    stay for the next contact and the caller goes on as usual.
    """
    pending = await crud.pending_patient_messages(session, conversation.id)
    if not pending:
        return 0
    name = short_id(conversation.id)
    try:
        events = await rasa.raw_events(conversation.id, timeout=SETTLE_TIMEOUT)
    except AssistantUnavailable:
        return 0
    settled: list[PatientMessage] = []
    for patient in pending:
        turn = find_turn(events, message_id(patient), name)
        if turn is None and patient.status == "answered":
            try:
                await rasa.append_events(conversation.id, await _answered_turn(session, patient, summary_link))
            except AssistantUnavailable:
                continue
            logger.info("conversation %s: the safety net's turn added to Rasa's tracker", name)
        elif turn is not None and patient.status == "unanswered" and turn.replies:
            reply = RasaReply(messages=turn.replies, nlu=turn.nlu)
            await crud.store_replies(
                session, conversation, reply, patient, summary_link=summary_link
            )
            logger.info("conversation %s: Rasa's late reply stored", name)
        settled.append(patient)
    await crud.set_tracker_pending(session, settled, False)
    return len(settled)
