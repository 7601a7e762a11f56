"""RasaClient over several Rasa replicas sharing one tracker store (``api.rasa_client``): a
conversation stays on its replica, moves when that one fails, comes back when it answers,
and no turn is lost or run twice on the way.

The replicas are fakes at the network edge (``httpx.MockTransport``) following what Rasa
does: a turn reaches the shared tracker only once it has run to the end, with the
``message_id`` it was sent with.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from api import rasa_client
from api.rasa_client import REPLICA_RETRY_S, AssistantUnavailable, RasaClient, Replicas
from api.settings import Settings

pytestmark = pytest.mark.anyio

A, B = "http://rasa-a:5005", "http://rasa-b:5005"
ACTIONS = "http://actions-a:5055,http://actions-b:5055"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeSet:
    """Rasa replicas over one shared tracker; ``mode`` says how each behaves now."""

    mode: dict[str, str] = field(default_factory=lambda: {A: "ok", B: "ok"})
    tracker: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    turns: list[tuple[str, str, str]] = field(default_factory=list)
    """(replica, sender, message) of each turn a replica ran to the end."""
    action_health: dict[str, int] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    """The replica of every webhook request, refused ones included."""
    tracker_down: bool = False
    """The shared tracker store cannot be read: every replica's tracker endpoint fails."""

    def _keep(self, replica: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = {"messages": [{"text": f"{replica[7:13]} answers {body['message']}"}]}
        self.tracker.setdefault(body["sender"], []).extend([
            {"event": "user", "text": body["message"], "message_id": body["message_id"],
             "parse_data": {"intent": {"name": "ask", "confidence": 0.9}}},
            {"event": "bot", "text": reply["messages"][0]["text"], "data": {}},
        ])
        self.turns.append((replica, body["sender"], body["message"]))
        return reply

    async def handler(self, request: httpx.Request) -> httpx.Response:
        base = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        if base.startswith("http://actions"):
            return httpx.Response(self.action_health.get(base, 200), json={"status": "ok"})
        mode = self.mode[base]
        if request.url.path.endswith("/webhook"):
            self.asked.append(base)
        if mode == "refuse":
            raise httpx.ConnectError("connection refused")
        if mode == "unanswering":  # what LeanTransport raises for a host that answers nothing
            raise httpx.ConnectTimeout("no connection within 1s")
        if mode == "error":
            return httpx.Response(500, json={"detail": "internal error"})
        if request.url.path == "/status":
            return httpx.Response(200, json={"model_file": "m.tar.gz"})
        if request.url.path.endswith("/tracker"):
            if self.tracker_down:
                return httpx.Response(500, json={"detail": "internal error"})
            sender = request.url.path.split("/")[2]
            return httpx.Response(200, json={"events": self.tracker.get(sender, [])})
        body = json.loads(request.content)
        if mode == "hang":
            await asyncio.sleep(10)
        if mode == "die-after-keeping":
            self._keep(base, body)
            raise httpx.RemoteProtocolError("the server closed the connection without a response")
        if mode == "error-after-keeping":  # its tracker store failed as it confirmed the write
            self._keep(base, body)
            return httpx.Response(500, json={"detail": "internal error"})
        if mode == "die-before-keeping":
            raise httpx.RemoteProtocolError("the server closed the connection without a response")
        return httpx.Response(200, json=self._keep(base, body))


@pytest.fixture
def fakes() -> FakeSet:
    return FakeSet()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def rasa(fakes: FakeSet, clock: Clock) -> AsyncIterator[RasaClient]:
    async with RasaClient(
        httpx.MockTransport(fakes.handler), rasa_url=f"{A},{B}", action_server_url=ACTIONS,
        timeout=0.5, check_timeout=0.3, clock=clock,
    ) as client:
        yield client


def _home(rasa: RasaClient, sender: str) -> str:
    return rasa.rasa.ranked(sender)[0].url


def _senders_on(rasa: RasaClient, replica: str, count: int) -> list[str]:
    return [s for s in (f"conv-{i}" for i in range(200)) if _home(rasa, s) == replica][:count]


async def test_a_conversation_stays_on_one_replica_and_conversations_spread_over_both(
    rasa: RasaClient, fakes: FakeSet
) -> None:
    senders = [f"conv-{i}" for i in range(100)]
    for sender in senders:
        for turn in range(3):
            await rasa.send(sender, f"q{turn}", command=False)
    by_sender: dict[str, set[str]] = {}
    for replica, sender, _ in fakes.turns:
        by_sender.setdefault(sender, set()).add(replica)
    assert all(len(replicas) == 1 for replicas in by_sender.values())
    on_a = sum(1 for replicas in by_sender.values() if replicas == {A})
    assert 30 <= on_a <= 70  # both carry a fair share
    # Every worker (another client, same URLs) sends each conversation to the same replica.
    other = Replicas(f"{A},{B}")
    assert all(other.ranked(s)[0].url == _home(rasa, s) for s in senders)


async def test_a_replica_that_cannot_be_reached_loses_its_conversations_until_it_answers(
    rasa: RasaClient, fakes: FakeSet, clock: Clock
) -> None:
    first, second = _senders_on(rasa, A, 2)
    fakes.mode[A] = "refuse"
    reply = await rasa.send(first, "hello", command=False)
    assert reply.messages[0].text == "rasa-b answers hello"
    assert fakes.asked == [A, B]
    await rasa.send(second, "hi", command=False)  # goes straight to B now
    assert fakes.asked == [A, B, B] and [t[0] for t in fakes.turns] == [B, B]
    clock.now += REPLICA_RETRY_S + 0.1
    fakes.mode[A] = "ok"
    await rasa.send(first, "back?", command=False)
    assert fakes.turns[-1][0] == A  # home again once it answers
    assert [m["text"] for m in fakes.tracker[first] if m["event"] == "user"] == ["hello", "back?"]


async def test_a_replica_that_answers_nothing_is_passed_over_within_the_turn(
    rasa: RasaClient, fakes: FakeSet
) -> None:
    [sender] = _senders_on(rasa, A, 1)
    fakes.mode[A] = "unanswering"
    reply = await rasa.send(sender, "hello", command=False)
    assert reply.messages[0].text == "rasa-b answers hello"
    assert fakes.asked == [A, B]


async def test_a_server_error_moves_the_turn_to_the_next_replica(
    rasa: RasaClient, fakes: FakeSet
) -> None:
    [sender] = _senders_on(rasa, A, 1)
    fakes.mode[A] = "error"
    reply = await rasa.send(sender, "hello", command=False)
    assert reply.messages[0].text == "rasa-b answers hello"
    assert fakes.turns == [(B, sender, "hello")]


async def test_a_turn_kept_before_its_replica_failed_is_read_back_not_run_again(
    rasa: RasaClient, fakes: FakeSet
) -> None:
    [sender] = _senders_on(rasa, A, 1)
    fakes.mode[A] = "error-after-keeping"
    reply = await rasa.send(sender, "hello", command=False, message_id="m43")
    assert reply.messages[0].text == "rasa-a answers hello"  # A's answer, from the tracker
    assert fakes.turns == [(A, sender, "hello")] and fakes.asked == [A]  # run once


async def test_after_a_server_error_a_tracker_nobody_can_read_stops_the_turn(
    rasa: RasaClient, fakes: FakeSet
) -> None:
    """Whether the failed replica kept the turn cannot be told: it is not run elsewhere."""
    [sender] = _senders_on(rasa, A, 1)
    fakes.mode[A] = "error-after-keeping"
    fakes.tracker_down = True
    with pytest.raises(AssistantUnavailable):
        await rasa.send(sender, "hello", command=False)
    assert fakes.asked == [A] and fakes.turns == [(A, sender, "hello")]


@pytest.fixture
def gone(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The replicas whose process is gone (they refuse connections): the fake network's
    answer to RasaClient's check after a connection lost mid-turn."""
    dead: set[str] = set()

    async def refuses(url: str) -> bool:
        return url in dead

    monkeypatch.setattr(rasa_client, "_refuses_connections", refuses)
    return dead


async def test_a_turn_kept_before_its_replica_died_is_read_back_not_run_again(
    rasa: RasaClient, fakes: FakeSet, gone: set[str]
) -> None:
    [sender] = _senders_on(rasa, A, 1)
    gone.add(A)
    fakes.mode[A] = "die-after-keeping"
    reply = await rasa.send(sender, "hello", command=False, message_id="m42")
    assert reply.messages[0].text == "rasa-a answers hello"  # A's answer, from the tracker
    assert reply.nlu.intent == "ask"
    assert fakes.turns == [(A, sender, "hello")]  # run once
    assert [e["message_id"] for e in fakes.tracker[sender] if e["event"] == "user"] == ["m42"]


async def test_a_turn_lost_with_its_replica_is_run_once_on_the_next(
    rasa: RasaClient, fakes: FakeSet, gone: set[str]
) -> None:
    [sender] = _senders_on(rasa, A, 1)
    fakes.mode[A] = "die-before-keeping"
    gone.add(A)
    reply = await rasa.send(sender, "hello", command=False)  # named by the client itself
    assert reply.messages[0].text == "rasa-b answers hello"
    assert fakes.turns == [(B, sender, "hello")]


async def test_a_lost_connection_to_a_replica_still_there_is_not_sent_elsewhere(
    rasa: RasaClient, fakes: FakeSet, gone: set[str]
) -> None:
    """The connection dropped but the replica still accepts connections: it may yet keep
    the turn, so the turn is not run on another (it stays marked: api.tracker_sync)."""
    [sender] = _senders_on(rasa, A, 1)
    fakes.mode[A] = "die-before-keeping"
    with pytest.raises(AssistantUnavailable):
        await rasa.send(sender, "hello", command=False)
    assert fakes.asked == [A] and fakes.turns == []


async def test_a_turn_that_timed_out_is_never_sent_again(
    rasa: RasaClient, fakes: FakeSet
) -> None:
    [sender] = _senders_on(rasa, A, 1)
    fakes.mode[A] = "hang"
    with pytest.raises(AssistantUnavailable, match="timeout"):
        await rasa.send(sender, "hello", command=False)
    assert fakes.turns == []  # B was not asked: A may still be working on it


async def test_a_replica_that_hangs_costs_one_timeout_not_one_a_turn(
    rasa: RasaClient, fakes: FakeSet, clock: Clock
) -> None:
    """It accepts connections and never answers (a frozen process): after one turn timed
    out there, its conversations (that one's next turn too) go to the next replica at once,
    until REPLICA_RETRY_S has passed."""
    first, *others = _senders_on(rasa, A, 4)
    fakes.mode[A] = "hang"
    with pytest.raises(AssistantUnavailable, match="timeout"):
        await rasa.send(first, "hello", command=False)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for sender in [first, *others]:
        await rasa.send(sender, "next", command=False)
    assert loop.time() - started < 0.3  # not one more timeout (each is 0.5 s here)
    assert fakes.asked == [A] + [B] * 4
    assert [(replica, message) for replica, _, message in fakes.turns] == [(B, "next")] * 4
    fakes.mode[A] = "ok"
    clock.now += REPLICA_RETRY_S
    await rasa.send(others[0], "back", command=False)
    assert fakes.turns[-1] == (A, others[0], "back")


async def test_with_every_replica_down_the_turn_is_unavailable(
    rasa: RasaClient, fakes: FakeSet
) -> None:
    fakes.mode = {A: "refuse", B: "error"}
    with pytest.raises(AssistantUnavailable):
        await rasa.send("conv-1", "hello", command=False)


async def test_the_tracker_is_read_from_whichever_replica_answers(
    rasa: RasaClient, fakes: FakeSet
) -> None:
    [sender] = _senders_on(rasa, A, 1)
    await rasa.send(sender, "hello", command=False)
    fakes.mode[A] = "refuse"
    events = await rasa.raw_events(sender)
    assert [e["text"] for e in events] == ["hello", "rasa-a answers hello"]


async def test_readiness_needs_one_replica_and_one_action_server(
    rasa: RasaClient, fakes: FakeSet
) -> None:
    fakes.mode[A] = "refuse"
    fakes.action_health["http://actions-a:5055"] = 500
    assert (await rasa.status())["model_file"] == "m.tar.gz"
    await rasa.action_server_health()
    fakes.mode[B] = "error"
    with pytest.raises(AssistantUnavailable, match="none of 2 replicas"):
        await rasa.status()
    fakes.action_health["http://actions-b:5055"] = 503
    with pytest.raises(AssistantUnavailable, match="none of 2 action servers"):
        await rasa.action_server_health()


def test_settings_take_replicas_comma_separated() -> None:
    settings = Settings(rasa_url=f"{A}/, {B}", action_server_url=ACTIONS)
    assert settings.rasa_url == f"{A},{B}"
    with pytest.raises(ValueError, match="comma-separated"):
        Settings(rasa_url=f"{A},rasa-b:5005")


async def test_a_gone_replica_is_one_that_refuses_connections() -> None:
    """RasaClient's check, on real sockets: a port nobody listens on is gone; a listener
    (busy or not) is not."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        assert not await rasa_client._refuses_connections(f"http://127.0.0.1:{port}")
    finally:
        listener.close()
    assert await rasa_client._refuses_connections(f"http://127.0.0.1:{port}")
