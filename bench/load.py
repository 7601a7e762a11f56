"""Simulated patients: the public chat API as the widget calls it, and Rasa's webhook as the
API calls it, with the same scripts. Every request gives up after the widget's timeout.

A request's latency is recorded whatever its outcome (a timeout counts its full wait);
a non-success status, a timeout or a connection failure is an error.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Protocol, Sequence

import httpx

from api.patient_auth import CONVERSATIONS_PATH, PatientKeys
from api.safety_net import OPENING_UNAVAILABLE, OTHERWISE_UNAVAILABLE
from contract.channel import AUTH_HEADER, WEBHOOK_PATH, auth_value
from contract.commands import start_command


@dataclass(frozen=True)
class Outcome:
    seconds: float
    error: str | None = None


@dataclass
class Calls:
    """The outcomes of one kind of request."""

    latencies: list[float] = field(default_factory=list)
    """Every request's, failed ones included (until the failure or the timeout)."""
    answered: list[float] = field(default_factory=list)
    """The successful requests' only."""
    errors: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.latencies.append(outcome.seconds)
        if outcome.error is None:
            self.answered.append(outcome.seconds)
        else:
            self.errors.append(outcome.error)

    def extend(self, other: Calls) -> None:
        """Add the outcomes of ``other`` (another run of the same kind of request)."""
        self.latencies.extend(other.latencies)
        self.answered.extend(other.answered)
        self.errors.extend(other.errors)

    @property
    def ok(self) -> int:
        return len(self.answered)


@dataclass
class Record:
    """What a set of conversations did: openings and turns apart."""

    openings: Calls = field(default_factory=Calls)
    turns: Calls = field(default_factory=Calls)
    not_sent: int = 0
    """Turns never sent because their conversation did not open."""
    handles: list[str] = field(default_factory=list)
    per_turn: list[list[float]] = field(default_factory=list)
    """Each conversation's turn latencies, in order."""


async def _timed(call: Awaitable[httpx.Response], timeout_s: float,
                 expect: int) -> tuple[Outcome, httpx.Response | None]:
    started = time.perf_counter()
    try:
        response = await asyncio.wait_for(call, timeout_s)
    except asyncio.TimeoutError:
        return Outcome(time.perf_counter() - started, "timeout"), None
    except httpx.HTTPError as exc:
        return Outcome(time.perf_counter() - started, type(exc).__name__), None
    seconds = time.perf_counter() - started
    if response.status_code != expect:
        return Outcome(seconds, f"HTTP {response.status_code}"), response
    return Outcome(seconds), response


class Channel(Protocol):
    async def open(self) -> tuple[Outcome, str | None]: ...

    async def say(self, handle: str, text: str) -> Outcome: ...


SAFETY_NET_MARKS = tuple(text.split("{", 1)[0] for text in (OPENING_UNAVAILABLE, OTHERWISE_UNAVAILABLE))
"""How a reply of the API's safety net begins: the assistant did not answer (an error here)."""


def safety_net_reply(body: dict[str, Any]) -> bool:
    return any(str(m.get("text", "")).startswith(SAFETY_NET_MARKS) for m in body.get("messages", []))


class Api:
    """The public chat API: a conversation opened with transcript consent, then messages.

    A reply from the API's safety net (Rasa did not answer in time: the API opens the
    conversation without it, or answers a red flag itself) counts as an error."""

    def __init__(self, client: httpx.AsyncClient, timeout_s: float) -> None:
        self.client, self.timeout_s = client, timeout_s

    async def open(self) -> tuple[Outcome, str | None]:
        outcome, response = await _timed(
            self.client.post(CONVERSATIONS_PATH, json={"consent": True}), self.timeout_s, 201)
        if outcome.error is not None or response is None:
            return outcome, None
        body = response.json()
        if safety_net_reply(body):  # the patient may type all the same: the conversation goes on
            outcome = Outcome(outcome.seconds, "safety-net opening")
        return outcome, str(body["conversation_id"])

    async def say(self, handle: str, text: str) -> Outcome:
        outcome, response = await _timed(
            self.client.post(f"{CONVERSATIONS_PATH}/{handle}/messages", json={"text": text}),
            self.timeout_s, 200)
        if outcome.error is None and response is not None and safety_net_reply(response.json()):
            return Outcome(outcome.seconds, "safety-net reply")
        return outcome


class Webhook:
    """Rasa's meso channel with Rasa's token, called as the API calls it: the same opening
    command, each message with a turn name (``message_id``)."""

    def __init__(self, client: httpx.AsyncClient, timeout_s: float) -> None:
        self.client, self.timeout_s = client, timeout_s
        self._turn = 0

    async def _post(self, body: dict[str, Any]) -> Outcome:
        outcome, response = await _timed(self.client.post(WEBHOOK_PATH, json=body), self.timeout_s, 200)
        if outcome.error is None and response is not None and not response.json().get("messages"):
            # The API treats a reply without any message as the assistant being unavailable.
            return Outcome(outcome.seconds, "empty reply")
        return outcome

    async def open(self) -> tuple[Outcome, str | None]:
        sender = secrets.token_urlsafe(32)
        outcome = await self._post({"sender": sender, "message": start_command(True), "command": True})
        return outcome, (sender if outcome.error is None else None)

    async def say(self, handle: str, text: str) -> Outcome:
        self._turn += 1
        return await self._post({"sender": handle, "message": text, "command": False,
                                 "message_id": f"m{self._turn}"})


class Parse:
    """Rasa's ``/model/parse`` (NLU only), with Rasa's token. It has no conversation: opening
    one sends nothing."""

    def __init__(self, client: httpx.AsyncClient, token: str, timeout_s: float) -> None:
        self.client, self.token, self.timeout_s = client, token, timeout_s

    async def open(self) -> tuple[Outcome, str | None]:
        return Outcome(0.0), ""

    async def say(self, handle: str, text: str) -> Outcome:
        outcome, _ = await _timed(self.client.post("/model/parse", params={"token": self.token},
                                                   json={"text": text}), self.timeout_s, 200)
        return outcome


def _client(base_url: str, connections: int, **kwargs: Any) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections + 5, max_keepalive_connections=connections + 5)
    # No httpx timeout: each call has the widget's total timeout (asyncio.wait_for) instead.
    return httpx.AsyncClient(base_url=base_url, timeout=None, limits=limits, **kwargs)


@asynccontextmanager
async def api(url: str, timeout_s: float, connections: int = 1) -> AsyncIterator[Api]:
    async with _client(url, connections, auth=PatientKeys()) as client:
        yield Api(client, timeout_s)


@asynccontextmanager
async def webhook(url: str, token: str, timeout_s: float, connections: int = 1) -> AsyncIterator[Webhook]:
    async with _client(url, connections, headers={AUTH_HEADER: auth_value(token)}) as client:
        yield Webhook(client, timeout_s)


@asynccontextmanager
async def parse(url: str, token: str, timeout_s: float) -> AsyncIterator[Parse]:
    async with _client(url, 1) as client:
        yield Parse(client, token, timeout_s)


async def converse(channel: Channel, script: Sequence[str], record: Record) -> None:
    """One conversation: open it, then send the script without pauses."""
    opening, handle = await channel.open()
    record.openings.add(opening)
    if handle is None:
        record.not_sent += len(script)
        return
    record.handles.append(handle)
    latencies: list[float] = []
    record.per_turn.append(latencies)
    for text in script:
        outcome = await channel.say(handle, text)
        record.turns.add(outcome)
        latencies.append(outcome.seconds)


async def concurrent(channel: Channel, scripts: Sequence[Sequence[str]]) -> tuple[Record, float]:
    """All conversations at once; the record and the wall time from first opening to last reply."""
    record = Record()
    started = time.perf_counter()
    await asyncio.gather(*(converse(channel, s, record) for s in scripts))
    return record, time.perf_counter() - started


async def burst(channel: Channel, count: int) -> Calls:
    """``count`` conversations opened at the same moment (no messages after)."""
    calls = Calls()
    for outcome, _ in await asyncio.gather(*(channel.open() for _ in range(count))):
        calls.add(outcome)
    return calls


async def interleaved(channels: Sequence[Channel], scripts: Sequence[Sequence[str]]) -> list[Record]:
    """One request at a time: open a conversation on each channel, then turn by turn, each
    channel's next message in turn, so that they share the same moments of the machine."""
    records = [Record() for _ in channels]
    handles: list[str | None] = []
    for channel, record, script in zip(channels, records, scripts):
        opening, handle = await channel.open()
        record.openings.add(opening)
        handles.append(handle)
        if handle is None:
            record.not_sent += len(script)
        else:
            record.handles.append(handle)
            record.per_turn.append([])
    for index in range(max(len(s) for s in scripts)):
        for channel, record, script, handle in zip(channels, records, scripts, handles):
            if handle is None or index >= len(script):
                continue
            outcome = await channel.say(handle, script[index])
            record.turns.add(outcome)
            record.per_turn[0].append(outcome.seconds)
    return records


async def handover_chain(channel: Channel, scripts: Sequence[Sequence[str]], edge: int) -> list[Record]:
    """Conversations one after another, one request at a time: each starts as the one before
    reaches its last ``edge`` turns, and those alternate with the new one's first ``edge``
    turns, so that late and early windows are measured at the same moments of the machine."""
    records = [Record() for _ in scripts]
    handles: list[str | None] = [None] * len(scripts)

    async def start(i: int) -> None:
        opening, handles[i] = await channel.open()
        records[i].openings.add(opening)
        if handles[i] is None:
            records[i].not_sent += len(scripts[i])
        else:
            records[i].handles.append(str(handles[i]))
            records[i].per_turn.append([])

    async def turn(i: int, index: int) -> None:
        handle = handles[i]
        if handle is None:
            return
        outcome = await channel.say(handle, scripts[i][index])
        records[i].turns.add(outcome)
        records[i].per_turn[0].append(outcome.seconds)

    await start(0)
    for i, script in enumerate(scripts):
        last = i + 1 == len(scripts)
        for index in range(edge if i else 0, len(script) if last else len(script) - edge):
            await turn(i, index)
        if not last:
            await start(i + 1)
            for offset in range(edge):
                await turn(i, len(script) - edge + offset)
                await turn(i + 1, offset)
    return records
