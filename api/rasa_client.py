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
import hashlib
import importlib.util
import logging
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
from contract.logs import REQUEST_ID_HEADER, request_id
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


UNREACHED = "unreached"
"""The request never reached the server (no connection could be made)."""
UNKNOWN = "unknown"
"""It may have reached it: the connection was lost mid-exchange, or the deadline passed."""
ANSWERED = "answered"
"""The server answered, with an error status or a reply that is no use."""

REPLICA_RETRY_S: float = 5.0
"""A Rasa replica (or action server) that failed is asked last for this long, then in its
turn again: a replica that came back gets its conversations back within seconds."""


class AssistantUnavailable(Exception):
    """Rasa or the action server could not give a usable answer in time.

    ``what`` names the call ("rasa webhook", ...), ``reason`` says briefly what went wrong
    ("timeout after 4s", "HTTP 500", "ConnectError", ...). ``reply`` is the parsed reply when
    Rasa answered with nothing to show: its data (a red flag) may still matter.
    """

    def __init__(
        self, what: str, reason: str, reply: RasaReply | None = None, reached: str = ANSWERED
    ) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason
        self.reply = reply
        self.reached = reached
        """:data:`UNREACHED`, :data:`UNKNOWN` or :data:`ANSWERED`: whether the request got
        there, which decides whether another replica may be asked the same."""


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
    declined: str | None = None
    """The kind of request the reply declines (``actions/refusals.py``; read for metrics)."""

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


@dataclass
class Replica:
    """One Rasa server (or action server) of the set, and until when it counts as down."""

    url: str
    rank_key: bytes
    down_until: float = 0.0

    @classmethod
    def at(cls, url: str) -> Replica:
        return cls(url.rstrip("/"), url.rstrip("/").encode() + b"\0")


def replica_urls(urls: str) -> list[str]:
    """The comma-separated base URLs of a setting (``MESO_RASA_URL``), in order."""
    return [url.strip().rstrip("/") for url in urls.split(",") if url.strip()]


class Replicas:
    """Which replica serves a conversation: the same one while it is healthy (rendezvous
    hashing of the conversation id over the replicas' URLs, so every API worker picks the
    same, and a replica leaving or coming back moves only its own conversations); one that
    failed is tried last for :data:`REPLICA_RETRY_S`."""

    def __init__(self, urls: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.members = [Replica.at(url) for url in replica_urls(urls)]
        if not self.members:
            raise ValueError("no replica URL given")
        self._clock = clock

    def ranked(self, key: str) -> list[Replica]:
        """The replicas in the order to ask them about conversation ``key``."""
        if len(self.members) == 1:
            return self.members
        token = key.encode()
        ranked = sorted(
            self.members,
            key=lambda r: hashlib.blake2b(r.rank_key + token, digest_size=8).digest(),
            reverse=True,
        )
        now = self._clock()
        return [r for r in ranked if r.down_until <= now] + [
            r for r in ranked if r.down_until > now
        ]

    def failed(self, replica: Replica) -> None:
        if len(self.members) > 1:
            if replica.down_until <= self._clock():
                logger.warning("replica %s failed: asked last for %gs", replica.url, REPLICA_RETRY_S)
            replica.down_until = self._clock() + REPLICA_RETRY_S

    def answered(self, replica: Replica) -> None:
        replica.down_until = 0.0


def _turn_name() -> str:
    """A name for a turn the caller did not name, so a lost reply can be looked for."""
    return "t" + secrets.token_hex(12)


class RasaClient:
    """Typed access to the Rasa webhook and tracker, Rasa's status and the action server's
    health, over one Rasa server or several replicas (``rasa_url`` comma-separated, sharing
    one tracker store and one lock store).

    A turn goes to its conversation's replica (:class:`Replicas`). When that replica cannot
    be reached, the next one is asked; when it answers with a server error, or the connection
    is lost mid-turn, the tracker (the shared store) says first whether the turn was kept: if
    it was, its replies are taken from there, else it is sent to the next; if no replica can
    say, it is not sent again. A turn that
    timed out is never sent again (Rasa may still be working on it: ``api.tracker_sync``),
    but its replica is asked last for a while, as one that failed.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        rasa_url: str,
        action_server_url: str,
        token: str = "",
        timeout: float = 4.0,
        check_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self.rasa = Replicas(rasa_url, clock)
        self.action_servers = Replicas(action_server_url, clock)
        self._token = token
        self._timeout = timeout
        self._check_timeout = check_timeout
        self.is_closed = False
        # What every chat turn sends the same way, made once.
        self._webhook_urls = {r.url: httpx.URL(r.url + WEBHOOK_PATH) for r in self.rasa.members}
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

        ``kwargs``: ``params``, ``json``, ``headers`` as ``httpx.Request`` takes them. The
        current request id (``contract.logs``) goes with it, for the other side's logs.
        """
        rid = request_id.get()
        if rid is not None:
            headers = kwargs.get("headers")
            kwargs["headers"] = {**headers, REQUEST_ID_HEADER: rid} if headers else {REQUEST_ID_HEADER: rid}
        started = time.perf_counter()
        timeouts = self._timeouts.get(timeout) or httpx.Timeout(timeout).as_dict()
        request = httpx.Request(method, url, extensions={"timeout": timeouts}, **kwargs)
        reached = UNKNOWN
        try:
            async with asyncio.timeout(timeout):
                response = await self._exchange(request)
        except (TimeoutError, httpx.TimeoutException) as exc:
            reason = f"timeout after {timeout:g}s"
            if isinstance(exc, httpx.ConnectTimeout):
                reached = UNREACHED
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
            if isinstance(exc, httpx.ConnectError):
                reached = UNREACHED
        else:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.debug("%s -> HTTP %d in %.0f ms", what, response.status_code, elapsed_ms)
            if response.is_success:
                return response
            reason = f"HTTP {response.status_code}"
            reached = ANSWERED
        logger.warning("%s unavailable (%s)", what, reason)
        raise AssistantUnavailable(what, reason, reached=reached)

    async def _on_replicas(
        self, key: str, what: str, method: str, path: str, timeout: float, **kwargs: Any
    ) -> httpx.Response:
        """A request any replica can answer (the tracker is shared): to the conversation's
        replica, and to the next while they cannot be reached or fail with a server error."""
        failure: AssistantUnavailable | None = None
        for replica in self.rasa.ranked(key):
            try:
                response = await self._request(what, method, replica.url + path, timeout, **kwargs)
            except AssistantUnavailable as exc:
                if not _another_may_answer(exc):
                    raise
                self.rasa.failed(replica)
                failure = exc
                continue
            self.rasa.answered(replica)
            return response
        assert failure is not None
        raise failure

    async def send(
        self, sender: str, text: str, command: bool, message_id: str | None = None
    ) -> RasaReply:
        """Pass one message to the assistant and return its reply.

        ``command`` is True only for text the API trusts (its own ``/start_conversation`` or a
        button payload the assistant offered); Rasa treats anything else as plain words.
        ``message_id`` names the turn in Rasa's tracker (``api.tracker_sync``); without one,
        the turn gets a name of its own, to be found again if its reply is lost.
        """
        turn_id = message_id if message_id is not None else _turn_name()
        body: dict[str, Any] = {
            "sender": sender, "message": text, "command": command, "message_id": turn_id
        }
        deadline = time.monotonic() + self._timeout
        failure: AssistantUnavailable | None = None
        for replica in self.rasa.ranked(sender):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                # The channel refuses callers without Rasa's token (in a header, never a URL).
                response = await self._request(
                    "rasa webhook",
                    "POST",
                    self._webhook_urls[replica.url],
                    remaining if failure is not None else self._timeout,
                    json=body,
                    headers=self._webhook_headers,
                )
            except AssistantUnavailable as exc:
                if _another_may_answer(exc):
                    self.rasa.failed(replica)
                    failure = exc
                    if exc.reached == ANSWERED:
                        # A server error can come once the turn is kept (the tracker store
                        # failing as it confirmed the write): the tracker says.
                        kept_reply = await self._kept_reply(sender, turn_id, deadline, exc)
                        if kept_reply is not None:
                            return kept_reply
                    continue
                if exc.reason.startswith("timeout"):
                    # Not sent again (Rasa may still be working on it), but the next turns,
                    # this conversation's too, go to the next replica for REPLICA_RETRY_S: a
                    # replica that accepts connections and then hangs costs one timeout a
                    # while, not one a turn. Rasa's lock store holds this conversation's
                    # next turn there until the hung one's ticket lapses.
                    self.rasa.failed(replica)
                    raise
                if exc.reached != UNKNOWN:
                    raise
                # The connection was lost mid-turn. Only a replica that is gone (it refuses
                # connections now) can be asked no more; one still there may yet keep the
                # turn, which must not then run on another too.
                self.rasa.failed(replica)
                failure = exc
                if not await _refuses_connections(replica.url):
                    raise
                kept_reply = await self._kept_reply(sender, turn_id, deadline, exc)
                if kept_reply is not None:
                    return kept_reply
                continue  # never kept: send it to the next replica
            self.rasa.answered(replica)
            return self._reply(sender, response)
        if failure is None:
            failure = AssistantUnavailable("rasa webhook", f"timeout after {self._timeout:g}s")
        raise failure

    async def _kept_reply(
        self, sender: str, turn_id: str, deadline: float, failure: AssistantUnavailable
    ) -> RasaReply | None:
        """After ``failure``, which may have come once the turn was kept: the turn's reply read
        back from the shared tracker, or None when it was never kept (another replica may run
        it). ``failure`` is raised when no replica can say, or when the turn was kept with
        nothing to say (an action failed, as a reply without messages)."""
        kept = await self._kept_turn(sender, turn_id, deadline)
        if kept is None or (kept is not _NOT_KEPT and not kept.replies):
            raise failure
        if kept is _NOT_KEPT:
            return None
        logger.info("rasa webhook: a lost reply was read back from the tracker")
        return RasaReply(messages=kept.replies, nlu=kept.nlu)

    async def _kept_turn(self, sender: str, turn_id: str, deadline: float) -> Turn | None:
        """The turn ``turn_id`` as the shared tracker holds it (:data:`_NOT_KEPT` when it
        does not), or None when no replica could say in time."""
        timeout = min(TRACKER_CHECK_TIMEOUT, max(0.05, deadline - time.monotonic()))
        try:
            events = await self.raw_events(sender, timeout=timeout)
        except AssistantUnavailable:
            return None
        turn = find_turn(events, turn_id, sender[:8])
        return turn if turn is not None else _NOT_KEPT

    def _reply(self, sender: str, response: httpx.Response) -> RasaReply:
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
        return await self._on_replicas(
            sender,
            "rasa tracker",
            "GET",
            f"/conversations/{sender}/tracker",
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
        await self._on_replicas(
            sender,
            "rasa tracker append",
            "POST",
            f"/conversations/{sender}/tracker/events",
            self._timeout,
            params=self._token_params(),
            json=events,
        )

    async def status(self) -> dict[str, Any]:
        """Rasa's ``/status`` from every replica at once; raises unless one answers 200 with
        a loaded model (replicas that do not are marked as failed, the others as answering)."""
        results = await asyncio.gather(
            *(self._replica_status(replica) for replica in self.rasa.members),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, dict):
                return result
        failures = [r for r in results if isinstance(r, AssistantUnavailable)]
        if len(failures) == 1:
            raise failures[0]
        raise AssistantUnavailable(
            "rasa status",
            f"none of {len(results)} replicas ready ("
            + "; ".join(f.reason for f in failures) + ")",
        )

    async def _replica_status(self, replica: Replica) -> dict[str, Any]:
        try:
            response = await self._request(
                "rasa status",
                "GET",
                replica.url + "/status",
                self._check_timeout,
                params=self._token_params(),
            )
            try:
                body = response.json()
            except ValueError:
                raise AssistantUnavailable("rasa status", "reply is not JSON") from None
            if not isinstance(body, dict) or not body.get("model_file"):
                raise AssistantUnavailable("rasa status", "no model loaded")
        except AssistantUnavailable:
            self.rasa.failed(replica)
            raise
        self.rasa.answered(replica)
        return body

    async def action_server_health(self) -> None:
        """Raise unless an action server's ``/health`` answers 2xx (all asked at once)."""
        results = await asyncio.gather(
            *(
                self._request(
                    "action server health", "GET", server.url + "/health", self._check_timeout
                )
                for server in self.action_servers.members
            ),
            return_exceptions=True,
        )
        for server, result in zip(self.action_servers.members, results):
            if isinstance(result, httpx.Response):
                self.action_servers.answered(server)
            else:
                self.action_servers.failed(server)
        if any(isinstance(result, httpx.Response) for result in results):
            return
        failure = results[0]
        if isinstance(failure, BaseException) and len(results) == 1:
            raise failure
        raise AssistantUnavailable(
            "action server health", f"none of {len(results)} action servers answers"
        )


TRACKER_CHECK_TIMEOUT: float = 0.5
"""Seconds to read the shared tracker after a replica was lost mid-turn."""


GONE_CHECK_TIMEOUT_S: float = 0.2


async def _refuses_connections(url: str) -> bool:
    """Whether the server at ``url`` refuses a new connection now (its process is gone);
    False when it accepts one, or does not answer in time (it may still be working)."""
    parts = httpx.URL(url)
    try:
        async with asyncio.timeout(GONE_CHECK_TIMEOUT_S):
            _, writer = await asyncio.open_connection(parts.host, parts.port or 80)
    except ConnectionRefusedError:
        return True
    except OSError:  # a timeout included: it may be busy, not gone
        return False
    writer.close()
    return False


def _another_may_answer(exc: AssistantUnavailable) -> bool:
    """Whether the next replica may be asked the same: the request never got there, or the
    replica failed with a server error. Rasa keeps a turn only once it has run to the end,
    but the tracker store can fail as it confirms that last write: after a server error to a
    turn, :meth:`RasaClient.send` asks the tracker before sending it elsewhere."""
    if exc.reached == UNREACHED:
        return True
    return exc.reached == ANSWERED and exc.reason.startswith("HTTP 5")


@dataclass
class Turn:
    """A user event of the tracker and what the bot sent after it, up to the next user event."""

    nlu: RasaNlu
    replies: list[RasaMessage] = field(default_factory=list)


_NOT_KEPT = Turn(RasaNlu())
"""What :meth:`RasaClient._kept_turn` returns when the tracker has no such turn."""


def find_turn(events: list[dict[str, Any]], turn_id: str, conversation: str) -> Turn | None:
    """The turn the tracker holds for ``turn_id``, or None when Rasa never saw it."""
    turn: Turn | None = None
    for event in events:
        kind = event.get("event")
        if kind == "user":
            if turn is not None:
                break
            if event.get("message_id") == turn_id:
                intent = (event.get("parse_data") or {}).get("intent") or {}
                turn = Turn(RasaNlu(intent=intent.get("name"), confidence=intent.get("confidence")))
        elif kind == "bot" and turn is not None:
            message = RasaEvent.model_validate(event).bot_message(conversation)
            if message is not None:
                turn.replies.append(message)
    return turn
