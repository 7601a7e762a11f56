"""Several action servers behind one Rasa (``bot.action_servers``), with Rasa's own endpoint
config and real HTTP servers on loopback: a call goes to the first that answers, a failed
one is asked last for a while, a timed-out or refused (4xx) call is not made again."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Dict, List, Tuple

import aiohttp
import pytest
from aiohttp import web
from rasa.utils.endpoints import ClientResponseError, EndpointConfig
from webhook_stub import serve_webhook

from bot import action_servers


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    monkeypatch.setattr(EndpointConfig, "request", EndpointConfig.request)  # restored after
    clock = Clock()
    action_servers.several_action_servers(clock)
    return clock


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _server(name: str, calls: List[Tuple[str, Any]], status: Any = 200,
                  delay: float = 0.0) -> Tuple[web.AppRunner, str]:
    """A server answering with ``status`` (or ``status[0]``, changeable while it runs)."""
    async def webhook(request: web.Request) -> web.Response:
        calls.append((name, await request.json()))
        await asyncio.sleep(delay)
        code = status[0] if isinstance(status, list) else status
        return web.json_response({"events": [], "responses": [{"text": name}]}, status=code)

    return await serve_webhook(webhook)


def _call(endpoint: EndpointConfig, **kwargs: Any) -> Any:
    return endpoint.request(json={"next_action": "action_answer"}, method="post", **kwargs)


def test_the_first_server_that_answers_takes_the_call_and_a_failed_one_waits() -> None:
    calls: List[Tuple[str, Any]] = []

    async def scenario() -> List[Any]:
        broken, broken_url = await _server("broken", calls, status=500)
        good, good_url = await _server("good", calls)
        refused = f"http://127.0.0.1:{_closed_port()}/webhook"
        endpoint = EndpointConfig(f"{refused},{broken_url},{good_url}",
                                  headers={"Authorization": "Bearer t"}, params={"p": "1"})
        try:
            first = await _call(endpoint)
            second = await _call(endpoint)  # refused and broken are asked last now
            return [first, second]
        finally:
            await broken.cleanup()
            await good.cleanup()

    first, second = asyncio.run(scenario())
    assert first["responses"] == [{"text": "good"}] == second["responses"]
    assert [name for name, _ in calls] == ["broken", "good", "good"]
    assert all(body == {"next_action": "action_answer"} for _, body in calls)


def test_a_server_back_after_the_pause_is_asked_first_again(clock: Clock) -> None:
    calls: List[Tuple[str, Any]] = []
    first_status = [503]

    async def scenario() -> None:
        first, first_url = await _server("first", calls, status=first_status)
        second, second_url = await _server("second", calls)
        endpoint = EndpointConfig(f"{first_url},{second_url}")
        try:
            await _call(endpoint)  # first fails: second answers
            first_status[0] = 200
            await _call(endpoint)  # first is asked last for a while
            clock.now += action_servers.RETRY_AFTER_S + 1
            await _call(endpoint)  # then first again
        finally:
            await first.cleanup()
            await second.cleanup()

    asyncio.run(scenario())
    assert [name for name, _ in calls] == ["first", "second", "second", "first"]


def test_an_action_refusing_the_call_and_a_timeout_are_not_sent_elsewhere() -> None:
    calls: List[Tuple[str, Any]] = []

    async def scenario() -> Dict[str, BaseException]:
        rejecting, rejecting_url = await _server("rejecting", calls, status=400)
        slow, slow_url = await _server("slow", calls, delay=2)
        good, good_url = await _server("good", calls)
        errors: Dict[str, BaseException] = {}
        try:
            for name, url in (("rejecting", rejecting_url), ("slow", slow_url)):
                try:
                    await _call(EndpointConfig(f"{url},{good_url}"),
                                timeout=aiohttp.ClientTimeout(total=0.3))
                except Exception as error:  # the kind is what is checked
                    errors[name] = error
        finally:
            for runner in (rejecting, slow, good):
                await runner.cleanup()
        return errors

    errors = asyncio.run(scenario())
    assert isinstance(errors["rejecting"], ClientResponseError) and errors["rejecting"].status == 400
    assert isinstance(errors["slow"], asyncio.TimeoutError)
    assert [name for name, _ in calls] == ["rejecting", "slow"]  # "good" never asked


def test_one_url_is_rasas_own_request() -> None:
    calls: List[Tuple[str, Any]] = []

    async def scenario() -> Any:
        good, good_url = await _server("good", calls)
        try:
            return await _call(EndpointConfig(good_url))
        finally:
            await good.cleanup()

    assert asyncio.run(scenario())["responses"] == [{"text": "good"}]
    assert action_servers.ServerList(" a , b ,").urls == ["a", "b"]
