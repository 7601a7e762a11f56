"""The input channel the API talks to: ``POST /webhooks/meso/webhook``.

Like Rasa's REST channel, plus two things the API needs:

* Commands are opt-in. Rasa reads any text starting with ``/`` as an intent command
  (``/inform{"x": 1}`` would set slots). Here a text is a command only when the caller
  says so with ``"command": true`` (the API does that for button payloads the assistant
  itself offered); otherwise leading slashes are dropped and the text is read as words.
* The caller may name the turn (``"message_id"``, at most 64 characters): the tracker's user
  event keeps it, so the API can tell later whether, and how, Rasa answered a message it
  stopped waiting for.
* The reply carries the NLU result (intent, confidence, entities) next to the messages,
  so the API can store it with the transcript without a second request. The message is
  parsed once, here, and the parse is handed to the processor.
* The parse runs on a thread of its own (:class:`ParseThread`), not on Rasa's event loop:
  the sentence encoder releases the interpreter while it computes, so one message's
  understanding and other messages' dialogue steps (tracker store, policies, action
  calls) use both cores. Parses still run one at a time, on that one thread.
* A command is read without the NLU pipeline (:func:`command_parse`): the pipeline's last
  step would replace everything the classifiers said about ``/intent{...}`` with the intent
  and entities written in it, so running them is wasted (it was half of the parse thread's
  work during a burst of openings). A command naming an intent the domain lacks still goes
  through the pipeline, as before.

Unlike Rasa's own webhooks it authenticates its caller: a call without ``Authorization:
Bearer <token>`` gets 401 before anything is parsed (compared in constant time). The token
is Rasa's own (``MESO_RASA_TOKEN``, which the API holds; ``token:`` in the credentials file
overrides it); with none configured every call is refused. The channel's ``GET`` health
route stays open.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.logs import working_for
from contract import channel
from contract.logs import FIELDS, request_id
from contract.payloads import check_custom

logger = logging.getLogger(__name__)



def as_words(text: str) -> str:
    """``text`` with leading slashes removed, so Rasa can never read it as a command."""
    stripped = text.lstrip()
    while stripped.startswith("/"):
        stripped = stripped[1:].lstrip()
    return stripped


class WholeMessagesOutput(CollectingOutputChannel):
    """Collects each bot message as one dict, text, buttons and custom payload together.

    Rasa's default collector splits a message with text and a custom payload in two,
    which would separate an answer from its sources. Each ``custom`` is checked against the
    contract (``contract.payloads``) as it leaves: a block outside it is logged here (the API
    drops it on arrival), so a bot change that breaks the contract shows on this side too.
    """

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        for problem in check_custom(message.get("custom"))[1]:
            logger.error("meso channel: %s block outside the contract (%s), sender %s",
                         problem.block, ", ".join(problem.kinds), recipient_id[:8])
        await self._persist_message(self._message(
            recipient_id,
            text=message.get("text"),
            image=message.get("image"),
            buttons=message.get("buttons") or message.get("quick_replies"),
            attachment=message.get("attachment"),
            custom=message.get("custom"),
        ))


def _nlu_summary(parse_data: dict[str, Any]) -> dict[str, Any]:
    intent = parse_data.get("intent") or {}
    return {
        "intent": intent.get("name"),
        "confidence": intent.get("confidence"),
        "entities": [
            {k: e.get(k) for k in ("entity", "value", "start", "end", "extractor") if k in e}
            for e in parse_data.get("entities") or []
        ],
    }


COMMAND_EXTRACTOR = "RegexMessageHandler"
"""The extractor name Rasa's pipeline gives a command's entities (its ``RegexMessageHandler``)."""


def command_parse(domain: Domain, text: str) -> Optional[Dict[Text, Any]]:
    """The parse data of a command, as Rasa's pipeline would give it; None if not one.

    Rasa's NLU pipeline ends with ``RegexMessageHandler``, which replaces the intent,
    ranking and entities of a text written as ``/intent{...}`` with the ones it names; the
    other outputs are not kept in the parse data of such a text. This reads the command the
    same way (Rasa's own ``unpack_regex_message``), without the pipeline. None when the text
    names no intent of the domain: then only the pipeline can say what it is.
    """
    message = YAMLStoryReader.unpack_regex_message(
        Message({TEXT: text}), domain, entity_extractor_name=COMMAND_EXTRACTOR)
    if message.get(INTENT) is None:
        return None
    parse_data: Dict[Text, Any] = {
        TEXT: "", INTENT: {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, ENTITIES: []}
    parse_data.update(message.as_dict(only_output_properties=True))
    return parse_data


class ParseThread:
    """Runs Rasa's message parse (the NLU pipeline) on one worker thread, off the event loop.

    One thread, so parses run one at a time, as they would on the loop; the thread keeps
    its own event loop for the processor's (synchronous inside) ``parse_message``. Made on
    first use, not at import.
    """

    def __init__(self) -> None:
        self._executor: Optional[ThreadPoolExecutor] = None
        self._local = threading.local()

    def _parse(self, processor: Any, message: UserMessage) -> Dict[Text, Any]:
        loop = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = asyncio.new_event_loop()
        return loop.run_until_complete(processor.parse_message(message))

    async def parse(self, processor: Any, message: UserMessage) -> Dict[Text, Any]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meso-parse")
        # In this task's context: the parse's log lines carry the turn's request id.
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, contextvars.copy_context().run, self._parse, processor, message)


TOKEN_ENV = "MESO_RASA_TOKEN"
"""Where the channel finds its callers' token when the credentials file names none."""


class MesoInput(InputChannel):
    def __init__(self, token: Optional[str] = None) -> None:
        self.token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        self._parser = ParseThread()
        if not self.token:
            logger.error("meso channel: no token (%s): every call will be refused", TOKEN_ENV)

    @classmethod
    def name(cls) -> str:
        return channel.NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        token = (credentials or {}).get("token")
        return cls(str(token) if token else None)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint("meso_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not channel.authorised(request.headers.get(channel.AUTH_HEADER), self.token):
                logger.warning("meso channel: call refused (no valid token)")
                return response.json({"detail": "unauthorised"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
            body = request.json if isinstance(request.json, dict) else None
            if body is None:
                return response.json({"detail": "expected a JSON object"}, status=400)
            sender, text, command = body.get("sender"), body.get("message"), body.get("command", False)
            message_id = body.get("message_id")
            if not isinstance(sender, str) or not sender or not isinstance(text, str) \
                    or not isinstance(command, bool) or len(text) > channel.MAX_TEXT_CHARS:
                return response.json(
                    {"detail": "'sender' (string), 'message' (string) and 'command' (boolean) are required"},
                    status=400,
                )
            if message_id is not None and (not isinstance(message_id, str) or not message_id
                                           or len(message_id) > channel.MAX_MESSAGE_ID_CHARS):
                return response.json({"detail": "'message_id' must be a string of 1-64 characters"},
                                     status=400)
            if not command:
                text = as_words(text)
            rid = request_id.set(working_for(request.headers))
            try:
                return await self._turn(request, on_new_message, sender, text, command, message_id)
            finally:
                request_id.reset(rid)

        return hook

    async def _turn(self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                    sender: str, text: str, command: bool, message_id: Optional[str]) -> HTTPResponse:
        """One turn; logs one line (its time and how many messages; never the text)."""
        started = time.perf_counter()
        agent = request.app.ctx.agent
        collector = WholeMessagesOutput()
        message = UserMessage(text, collector, sender, input_channel=self.name(), message_id=message_id)
        try:
            parse_data = command_parse(agent.processor.domain, text) if command else None
            if parse_data is None:
                parse_data = await self._parser.parse(agent.processor, message)
            message.parse_data = parse_data
            await on_new_message(message)
        except asyncio.CancelledError:
            logger.error("meso channel: message handling was cancelled (sender %s)", sender[:8])
            raise
        ms = round((time.perf_counter() - started) * 1000)
        logger.info("meso channel: turn answered in %d ms (%d messages)", ms, len(collector.messages),
                    extra={FIELDS: {"ms": ms, "messages": len(collector.messages)}})
        return response.json({"messages": collector.messages, "nlu": _nlu_summary(parse_data)})
