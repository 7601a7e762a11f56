"""RasaClient against httpx.MockTransport: requests sent, replies parsed, failures raised."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from api.rasa_client import AssistantUnavailable, RasaClient, RasaReply

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], Any]


@pytest.fixture
def seen() -> list[httpx.Request]:
    return []


@pytest.fixture
def client_for(seen: list[httpx.Request]) -> Callable[[Handler], Any]:
    """``async with client_for(handler) as rasa:`` a RasaClient over a mock network."""

    @asynccontextmanager
    async def make(handler: Handler, **kwargs: Any) -> AsyncIterator[RasaClient]:
        async def recording(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            result = handler(request)
            if asyncio.iscoroutine(result):
                result = await result
            return result  # type: ignore[no-any-return]

        options: dict[str, Any] = {
            "rasa_url": "http://rasa.local:5005/",
            "action_server_url": "http://actions.local:5055",
            "token": "s3cret",
            "timeout": 0.3,
            "check_timeout": 0.3,
        }
        options.update(kwargs)
        async with RasaClient(httpx.MockTransport(recording), **options) as rasa:
            yield rasa

    return make


FULL_REPLY = {
    "messages": [
        {
            "text": "Sessions usually cost between X and Y.",
            "buttons": [{"title": "Book", "payload": "/book", "extra": 1}],
            "custom": {
                "sources": [
                    {"id": "a", "title": "A", "url": "https://a.example"},
                    {"id": "b", "title": "B"},
                ],
                "topic": "cost",
                "entry_id": "cost-1",
                "score": 0.5,
                "certainty": "low",
                "reviewed": "2026-01-01",
                "unknown": True,
            },
        },
        {"text": "Anything else?"},
        {},
    ],
    "nlu": {"intent": "ask_cost", "confidence": 0.9, "entities": [{"entity": "x"}]},
    "extra_top_level": "ignored",
}


async def test_send_posts_the_agreed_json_and_parses_the_reply(
    client_for: Callable[..., Any], seen: list[httpx.Request]
) -> None:
    async with client_for(lambda r: httpx.Response(200, json=FULL_REPLY)) as rasa:
        reply = await rasa.send("conv-1", "how much?", command=False)

    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == "http://rasa.local:5005/webhooks/meso/webhook"
    body = json.loads(request.content)
    turn = body.pop("message_id")  # named even when the caller did not: see test_replicas.py
    assert body == {"sender": "conv-1", "message": "how much?", "command": False}
    assert isinstance(turn, str) and 1 <= len(turn) <= 64
    assert "s3cret" not in str(request.url)
    assert request.headers["authorization"] == "Bearer s3cret"  # the channel refuses others
    assert isinstance(reply, RasaReply)
    first, second, third = reply.messages
    assert first.text == "Sessions usually cost between X and Y."
    assert [(b.title, b.payload) for b in first.buttons or []] == [("Book", "/book")]
    assert first.custom is not None
    assert [(s.id, s.url) for s in first.custom.sources] == [
        ("a", "https://a.example"),
        ("b", None),
    ]
    assert (first.custom.topic, first.custom.entry_id, first.custom.score) == (
        "cost",
        "cost-1",
        0.5,
    )
    assert (second.buttons, second.custom, second.is_empty) == (None, None, False)
    assert third.is_empty
    assert (reply.nlu.intent, reply.nlu.confidence, reply.nlu.entities) == (
        "ask_cost",
        0.9,
        [{"entity": "x"}],
    )


async def test_send_passes_the_command_flag(
    client_for: Callable[..., Any], seen: list[httpx.Request]
) -> None:
    async with client_for(lambda r: httpx.Response(200, json={"messages": [{"text": "Hello"}]})) as rasa:
        reply = await rasa.send("conv-1", "/start_conversation", command=True)

    assert json.loads(seen[0].content)["command"] is True
    assert [m.text for m in reply.messages] == ["Hello"]
    assert reply.nlu.intent is None and reply.nlu.entities == []


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("All connection attempts failed", request=request)


def _read_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


async def _slow(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(5)
    return httpx.Response(200, json={"messages": []})


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (_refuse, "ConnectError"),
        (_read_timeout, "timeout after 0.3s"),
        (_slow, "timeout after 0.3s"),
        (lambda r: httpx.Response(500, text="Internal error"), "HTTP 500"),
        (lambda r: httpx.Response(404), "HTTP 404"),
        (lambda r: httpx.Response(200, text="not json"), "malformed reply"),
        (lambda r: httpx.Response(200, json={"messages": "nope"}), "malformed reply"),
        (
            lambda r: httpx.Response(200, json={"messages": [{"buttons": [{"title": "t"}]}]}),
            "malformed reply",
        ),
    ],
    ids=[
        "refused",
        "read timeout",
        "slow",
        "500",
        "404",
        "not json",
        "wrong shape",
        "button without payload",
    ],
)
async def test_send_failures_raise_assistant_unavailable(
    client_for: Callable[..., Any], handler: Handler, reason: str
) -> None:
    started = time.monotonic()
    async with client_for(handler) as rasa:
        with pytest.raises(AssistantUnavailable) as caught:
            await rasa.send("conv-1", "private words", command=False)

    assert time.monotonic() - started < 1.0
    assert caught.value.what == "rasa webhook"
    assert caught.value.reason == reason
    assert "private words" not in str(caught.value)


async def test_status_sends_the_token_and_returns_the_body(
    client_for: Callable[..., Any], seen: list[httpx.Request]
) -> None:
    body = {"model_file": "models/m.tar.gz", "model_id": "abc"}
    async with client_for(lambda r: httpx.Response(200, json=body)) as rasa:
        assert await rasa.status() == body

    [request] = seen
    assert (request.method, request.url.path, request.url.params["token"]) == (
        "GET",
        "/status",
        "s3cret",
    )


async def test_status_without_token_sends_no_token_parameter(
    client_for: Callable[..., Any], seen: list[httpx.Request]
) -> None:
    async with client_for(
        lambda r: httpx.Response(200, json={"model_file": "m"}), token=""
    ) as rasa:
        await rasa.status()
    assert "token" not in seen[0].url.params


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(200, json={"model_file": None}), "no model loaded"),
        (httpx.Response(200, json={"model_file": ""}), "no model loaded"),
        (httpx.Response(200, json={}), "no model loaded"),
        (httpx.Response(200, json=["model_file"]), "no model loaded"),
        (httpx.Response(200, text="<html>"), "reply is not JSON"),
        (httpx.Response(401, json={"message": "bad token"}), "HTTP 401"),
    ],
    ids=["null model", "empty model", "no model key", "not an object", "not json", "401"],
)
async def test_status_raises_without_a_loaded_model(
    client_for: Callable[..., Any], response: httpx.Response, reason: str
) -> None:
    async with client_for(lambda r: response) as rasa:
        with pytest.raises(AssistantUnavailable) as caught:
            await rasa.status()
    assert caught.value.reason == reason
    assert "s3cret" not in str(caught.value)


async def test_status_times_out_on_its_own_short_deadline(client_for: Callable[..., Any]) -> None:
    started = time.monotonic()
    async with client_for(_slow, timeout=10.0, check_timeout=0.2) as rasa:
        with pytest.raises(AssistantUnavailable, match=r"timeout after 0\.2s"):
            await rasa.status()
    assert time.monotonic() - started < 1.0


async def test_action_server_health(
    client_for: Callable[..., Any], seen: list[httpx.Request]
) -> None:
    async with client_for(lambda r: httpx.Response(200, json={"status": "ok"})) as rasa:
        await rasa.action_server_health()
    assert str(seen[0].url) == "http://actions.local:5055/health"

    async with client_for(lambda r: httpx.Response(503)) as rasa:
        with pytest.raises(AssistantUnavailable, match="action server health: HTTP 503"):
            await rasa.action_server_health()
    async with client_for(_refuse) as rasa:
        with pytest.raises(AssistantUnavailable, match="ConnectError"):
            await rasa.action_server_health()


async def test_one_client_serves_concurrent_calls(client_for: Callable[..., Any]) -> None:
    async def echo(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        await asyncio.sleep(0.05)
        return httpx.Response(200, json={"messages": [{"text": body["sender"]}]})

    async with client_for(echo) as rasa:
        started = time.monotonic()
        replies = await asyncio.gather(*(rasa.send(f"c{i}", "x", command=False) for i in range(10)))
    assert [r.messages[0].text for r in replies] == [f"c{i}" for i in range(10)]
    assert time.monotonic() - started < 0.3  # they ran concurrently, not one after another



async def test_a_reply_with_nothing_to_say_counts_as_unavailable(client_for: Callable[[Handler], Any]) -> None:
    """Rasa answers 200 without messages when an action failed (the action server is down)."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"messages": [{"custom": {"x": 1}}], "nlu": {"intent": "ask_pain"}})

    async with client_for(handler) as rasa:
        with pytest.raises(AssistantUnavailable) as info:
            await rasa.send("c" * 43, "does it hurt", command=False)
    assert info.value.reason == "reply without any message"


DATA_REPLY = {
    "messages": [
        {
            "text": "Call 999 now.",
            "custom": {
                "red_flag": {"level": "emergency", "flags": ["breathing"]},
                "record": {"sure": [True, False], "values": None},
                "callback": {
                    "name": " Ann ",
                    "phone": "020 7946 0958",
                    "email": "",
                    "consent": True,
                    "preferred_time": None,
                },
                "summary": {
                    "title": "Summary",
                    "generated_at": "2026-11-29T10:15:00+02:00",
                    "sections": [{"heading": "H", "items": [{"text": "T", "sources": ["a"]}]}],
                    "footer": None,
                },
            },
        },
        {"custom": {"record": {"checklist_consent": True}}},
    ]
}


async def test_send_parses_the_data_blocks(client_for: Callable[..., Any]) -> None:
    async with client_for(lambda r: httpx.Response(200, json=DATA_REPLY)) as rasa:
        reply = await rasa.send("conv-1", "help", command=False)

    first, data_only = reply.messages
    custom = first.custom
    assert custom is not None and custom.red_flag is not None
    assert (custom.red_flag.level, custom.red_flag.flags) == ("emergency", ["breathing"])
    assert custom.record == {"sure": [True, False], "values": None}
    assert custom.callback is not None
    assert (custom.callback.name, custom.callback.phone, custom.callback.email) == (
        "Ann",
        "020 7946 0958",
        None,
    )
    assert custom.summary is not None
    assert custom.summary.generated_at.isoformat() == "2026-11-29T08:15:00+00:00"
    assert custom.summary.sections[0].intro is None
    assert data_only.is_empty and data_only.custom is not None
    assert data_only.custom.record == {"checklist_consent": True}


async def test_malformed_data_blocks_are_dropped_not_fatal(
    client_for: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    body = {
        "messages": [
            {
                "text": "An answer.",
                "custom": {
                    "topic": "cost",
                    "red_flag": {"level": "very bad"},
                    "record": ["not", "an", "object"],
                    "callback": {"name": "Bob", "phone": "555-SECRET", "consent": True},
                    "summary": {"title": "no sections"},
                },
            }
        ]
    }
    caplog.set_level("WARNING", logger="api")
    async with client_for(lambda r: httpx.Response(200, json=body)) as rasa:
        reply = await rasa.send("conversation-id-0123456789", "x", command=False)

    custom = reply.messages[0].custom
    assert custom is not None and custom.topic == "cost"
    assert (custom.red_flag, custom.record, custom.callback, custom.summary) == (
        None,
        None,
        None,
        None,
    )
    logged = [r.getMessage() for r in caplog.records]
    for block in ("red_flag", "record", "callback", "summary"):
        assert any(
            m.startswith(f"conversation conversa: {block} block from the bot ignored")
            for m in logged
        ), block
    assert not any("SECRET" in m or "Bob" in m or "very bad" in m for m in logged)


async def test_a_reply_with_only_data_is_unavailable_but_keeps_the_data(
    client_for: Callable[..., Any],
) -> None:
    body = {"messages": [{"custom": {"red_flag": {"level": "crisis"}}}]}
    async with client_for(lambda r: httpx.Response(200, json=body)) as rasa:
        with pytest.raises(AssistantUnavailable) as caught:
            await rasa.send("conv-1", "x", command=False)

    assert caught.value.reason == "reply without any message"
    assert caught.value.reply is not None
    [message] = caught.value.reply.messages
    assert message.custom is not None and message.custom.red_flag is not None
    assert message.custom.red_flag.level == "crisis"
