"""Client of the private Rasa server and action server.

One httpx transport (created in the app's lifespan: ``api.http_transport.LeanTransport``,
its connections kept alive) is shared by all requests. Requests go straight to it: an
``httpx.AsyncClient`` around it would add cookies, redirects and authentication flows, which
these calls never use, at a cost on every chat turn. Every failure to get a usable answer
(connection error, timeout, non-2xx status, a body that is not the agreed JSON) becomes
:class:`AssistantUnavailable`, whose ``reason`` is safe to log: it never contains message
text, URLs or the token.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import time
from typing import Annotated, Any

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from api.bot_data import Callback, FieldCheck, RedFlag, validate_record
from api.schemas import Summary
from contract import channel
from contract.payloads import check_custom

logger = logging.getLogger(__name__)

WEBHOOK_PATH = channel.WEBHOOK_PATH

CONNECTIONS = httpx.Limits(
    max_connections=200, max_keepalive_connections=64, keepalive_expiry=4.0
)
"""The connections of httpx's own transport, which ``api.http_transport.LeanTransport`` hands
anything but plain ``http://`` to (a Rasa reached over ``https://``). What follows was
measured when it carried every call. A conversation waits for one Rasa reply at a time, so 200 is
room for 100 conversations opening at once with as many turns and the readiness probe beside
them before a request queues for a connection (that wait would count against
``MESO_RASA_TIMEOUT``). httpcore closes a connection that falls idle while the pool holds
more than ``max_keepalive_connections`` (busy ones counted), so with 20, under 50 patients at
once (no pauses) nearly every turn opened and closed a connection of its own (380 for 400
requests), at a cost to the API and to Rasa's event loop. Keeping up to 64, the 50
conversations keep theirs: measured in one stack against 20 (two runs of six rounds, each
setting in turn, one of them keeping up to 200, which at this load keeps the same), the API
used 7-15% less CPU per turn, Rasa 5-12% less, and turns went 4-10% faster, without errors
(an older measurement, when a turn took seconds, had found turns timing out with all 50
kept). Not more: httpcore looks at every pooled connection on each request. An idle
connection is dropped after 4 s, well before Rasa's server closes it from its side (Rasa sets
Sanic's keep-alive to 120 s, ``rasa.core.run.configure_app``; not Sanic's default of 5 s), so
a request never goes out on a connection the server is closing."""


def note_absent_sniffio() -> None:
    """Mark the optional ``sniffio`` as absent once, when it is not installed (call at start).

    httpcore tries ``import sniffio`` each time it sets up a lock, several times per request;
    when it is not installed, each try searched the whole ``sys.path`` again (about 1 ms of CPU
    per chat turn). A ``None`` in ``sys.modules`` makes the import system answer at once with
    the same ImportError, and httpcore falls back to asyncio as before.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


class AssistantUnavailable(Exception):
    """Rasa or the action server could not give a usable answer in time.

    ``what`` names the call ("rasa webhook", ...), ``reason`` says briefly what went wrong
    ("timeout after 4s", "HTTP 500", "ConnectError", ...). ``reply`` is the parsed reply when
    Rasa answered with nothing to show: its data (a red flag) may still matter.
    """

    def __init__(self, what: str, reason: str, reply: RasaReply | None = None) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason
        self.reply = reply


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RasaButton(_Lenient):
    title: str
    payload: str


class RasaSource(_Lenient):
    id: str
    title: str
    url: str | None = None


class RasaFigure(_Lenient):
    """A number the message quotes; with ``per_100``, a share of people (an icon array)."""

    value: str | None = None
    source: str | None = None
    per_100: int | None = None
    label: str | None = None
    alt: str | None = None


DATA_BLOCKS = ("red_flag", "record", "callback", "summary", "field_check")
"""The decision-support blocks of ``custom`` (see ``api.bot_data``)."""


class RasaCustom(_Lenient):
    """The ``custom`` part of a Rasa message: where the answer came from, and any data blocks.

    Each block is checked against the contract (``contract.payloads``) first: one outside it
    (or one the contract does not know) is dropped with a warning naming the block and the
    kinds of error; it never fails the reply.
    """

    @model_validator(mode="before")
    @classmethod
    def _within_the_contract(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, dict):
            return value
        kept, problems = check_custom(value)
        context = info.context if isinstance(info.context, dict) else {}
        for problem in problems:
            logger.warning(
                "conversation %s: %s block from the bot ignored (outside the contract: %s)",
                context.get("conversation", "?"),
                problem.block,
                ", ".join(problem.kinds),
            )
        return kept

    sources: list[RasaSource] = Field(default_factory=list)
    topic: str | None = None
    entry_id: str | None = None
    score: float | None = None
    certainty: str | None = None
    reviewed: str | None = None
    red_flag: RedFlag | None = None
    record: Annotated[dict[str, Any], AfterValidator(validate_record)] | None = None
    callback: Callback | None = None
    summary: Summary | None = None
    field_check: FieldCheck | None = None
    figures: list[RasaFigure] = Field(default_factory=list)

    @field_validator(*DATA_BLOCKS, mode="wrap")
    @classmethod
    def _drop_malformed(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        if value is None:
            return None
        try:
            return handler(value)
        except ValidationError as exc:
            context = info.context if isinstance(info.context, dict) else {}
            # Error kinds and places only: the values (a phone number, a name) stay out.
            kinds = sorted({str(error["type"]) for error in exc.errors()})
            logger.warning(
                "conversation %s: %s block from the bot ignored (%d errors: %s)",
                context.get("conversation", "?"),
                info.field_name,
                exc.error_count(),
                ", ".join(kinds),
            )
            return None


class RasaMessage(_Lenient):
    text: str | None = None
    buttons: list[RasaButton] | None = None
    custom: RasaCustom | None = None

    @property
    def is_empty(self) -> bool:
        """True when there is neither text nor a button to show.

        Such a message is not stored or shown, but its ``custom`` data is still applied.
        """
        return not self.text and not self.buttons


class RasaNlu(_Lenient):
    intent: str | None = None
    confidence: float | None = None
    entities: list[dict[str, Any]] = Field(default_factory=list)


class RasaReply(_Lenient):
    """Rasa's answer to one incoming message."""

    messages: list[RasaMessage] = Field(default_factory=list)
    nlu: RasaNlu = Field(default_factory=RasaNlu)


class RasaEvent(_Lenient):
    """One event of a Rasa tracker; only user and bot events are read (``text``, ``data``)."""

    event: str
    text: str | None = None
    data: dict[str, Any] | None = None
    """Bot events: ``{"buttons", "quick_replies", "custom", ...}`` as the bot sent them."""

    def bot_message(self, conversation: str) -> RasaMessage | None:
        """A bot event as the message the webhook sent; None if it is malformed."""
        data = self.data or {}
        try:
            return RasaMessage.model_validate(
                {
                    "text": self.text,
                    "buttons": data.get("buttons") or data.get("quick_replies"),
                    "custom": data.get("custom"),
                },
                context={"conversation": conversation},
            )
        except ValidationError:
            logger.warning(
                "conversation %s: malformed bot event in the tracker skipped", conversation
            )
            return None


class RasaTracker(_Lenient):
    events: list[RasaEvent] = Field(default_factory=list)


class RasaClient:
    """Typed access to the Rasa webhook and tracker, Rasa's status and the action server's
    health."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        rasa_url: str,
        action_server_url: str,
        token: str = "",
        timeout: float = 4.0,
        check_timeout: float = 2.0,
    ) -> None:
        self._transport = transport
        self._rasa_url = rasa_url.rstrip("/")
        self._action_url = action_server_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._check_timeout = check_timeout
        self.is_closed = False
        # What every chat turn sends the same way, made once.
        self._webhook_url = httpx.URL(self._rasa_url + WEBHOOK_PATH)
        self._webhook_headers = (
            {channel.AUTH_HEADER: channel.auth_value(token)} if token else None
        )
        self._timeouts = {t: httpx.Timeout(t).as_dict() for t in (timeout, check_timeout)}

    async def __aenter__(self) -> RasaClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transport and its connections."""
        self.is_closed = True
        await self._transport.aclose()

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        """One request through the transport, its body read and its connection released."""
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def _request(
        self, what: str, method: str, url: str | httpx.URL, timeout: float, **kwargs: Any
    ) -> httpx.Response:
        """Send one request with an overall deadline; raise AssistantUnavailable on any failure.

        ``kwargs``: ``params``, ``json``, ``headers`` as ``httpx.Request`` takes them.
        """
        started = time.perf_counter()
        timeouts = self._timeouts.get(timeout) or httpx.Timeout(timeout).as_dict()
        request = httpx.Request(method, url, extensions={"timeout": timeouts}, **kwargs)
        try:
            async with asyncio.timeout(timeout):
                response = await self._exchange(request)
        except (TimeoutError, httpx.TimeoutException):
            reason = f"timeout after {timeout:g}s"
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
        else:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.debug("%s -> HTTP %d in %.0f ms", what, response.status_code, elapsed_ms)
            if response.is_success:
                return response
            reason = f"HTTP {response.status_code}"
        logger.warning("%s unavailable (%s)", what, reason)
        raise AssistantUnavailable(what, reason)

    async def send(
        self, sender: str, text: str, command: bool, message_id: str | None = None
    ) -> RasaReply:
        """Pass one message to the assistant and return its reply.

        ``command`` is True only for text the API trusts (its own ``/start_conversation`` or a
        button payload the assistant offered); Rasa treats anything else as plain words.
        ``message_id`` names the turn in Rasa's tracker (``api.tracker_sync``).
        """
        body: dict[str, Any] = {"sender": sender, "message": text, "command": command}
        if message_id is not None:
            body["message_id"] = message_id
        # The channel refuses callers without Rasa's token (in a header: never in a URL).
        response = await self._request(
            "rasa webhook",
            "POST",
            self._webhook_url,
            self._timeout,
            json=body,
            headers=self._webhook_headers,
        )
        try:
            reply = RasaReply.model_validate_json(
                response.content, context={"conversation": sender[:8]}
            )
        except ValidationError as exc:
            logger.warning(
                "rasa webhook unavailable (malformed reply, %d errors)", exc.error_count()
            )
            raise AssistantUnavailable("rasa webhook", "malformed reply") from None
        if all(m.is_empty for m in reply.messages):
            # Rasa answers 200 with nothing to say when an action failed (for example the
            # action server is down): to the patient that is no answer at all.
            logger.warning("rasa webhook unavailable (reply without any message)")
            raise AssistantUnavailable("rasa webhook", "reply without any message", reply)
        return reply

    def _token_params(self) -> dict[str, str] | None:
        return {"token": self._token} if self._token else None

    async def tracker(self, sender: str) -> list[RasaEvent]:
        """Every event of the conversation's tracker in Rasa (``GET
        /conversations/{sender}/tracker``, all sessions).

        For a conversation without transcript consent this is the only copy of what was said.
        """
        response = await self._get_tracker(sender)
        try:
            return RasaTracker.model_validate_json(response.content).events
        except ValidationError as exc:
            logger.warning(
                "rasa tracker unavailable (malformed reply, %d errors)", exc.error_count()
            )
            raise AssistantUnavailable("rasa tracker", "malformed reply") from None

    async def _get_tracker(self, sender: str, timeout: float | None = None) -> httpx.Response:
        return await self._request(
            "rasa tracker",
            "GET",
            f"{self._rasa_url}/conversations/{sender}/tracker",
            min(timeout, self._timeout) if timeout is not None else self._timeout,
            params={"include_events": "ALL", **(self._token_params() or {})},
        )

    async def raw_events(self, sender: str, timeout: float | None = None) -> list[dict[str, Any]]:
        """Every event of the conversation's tracker as Rasa's JSON (all sessions, every
        field), for a test story or to settle a turn; :meth:`tracker` keeps only what a
        history needs. ``timeout``: a deadline of its own, shorter than the usual one."""
        response = await self._get_tracker(sender, timeout)
        try:
            events = response.json().get("events") or []
        except (ValueError, AttributeError):
            events = None
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            logger.warning("rasa tracker unavailable (malformed reply)")
            raise AssistantUnavailable("rasa tracker", "malformed reply")
        return events

    async def append_events(self, sender: str, events: list[dict[str, Any]]) -> None:
        """Append ``events`` to the conversation's tracker in Rasa (``POST
        /conversations/{sender}/tracker/events``; nothing is run, no message is sent)."""
        await self._request(
            "rasa tracker append",
            "POST",
            f"{self._rasa_url}/conversations/{sender}/tracker/events",
            self._timeout,
            params=self._token_params(),
            json=events,
        )

    async def status(self) -> dict[str, Any]:
        """Rasa's ``/status``; raises unless Rasa answers 200 with a loaded model."""
        response = await self._request(
            "rasa status",
            "GET",
            self._rasa_url + "/status",
            self._check_timeout,
            params=self._token_params(),
        )
        try:
            body = response.json()
        except ValueError:
            raise AssistantUnavailable("rasa status", "reply is not JSON") from None
        if not isinstance(body, dict) or not body.get("model_file"):
            raise AssistantUnavailable("rasa status", "no model loaded")
        return body

    async def action_server_health(self) -> None:
        """Raise unless the action server's ``/health`` answers 2xx."""
        await self._request(
            "action server health", "GET", self._action_url + "/health", self._check_timeout
        )
