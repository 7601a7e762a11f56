"""The bot processes' logs (``bot.logs``): Rasa's calls to the action server carry the turn's
request id (with Rasa's own endpoint config, several action servers too, and a real HTTP
server on loopback); the processes write JSON lines, Sanic's errors and Python's warnings
included, however Rasa sets up Sanic afterwards."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import List, Optional

import pytest
from aiohttp import web
from rasa.utils.endpoints import EndpointConfig
from webhook_stub import serve_webhook

from bot import action_servers, logs
from contract.logs import request_id


@pytest.fixture
def patched_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EndpointConfig, "request", EndpointConfig.request)  # restored after
    action_servers.several_action_servers()
    logs.send_request_ids()
    logs.send_request_ids()  # once is enough: applied again, nothing changes


async def _server(seen: List[Optional[str]]) -> tuple:
    async def webhook(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Request-ID"))
        return web.json_response({"events": [], "responses": []})

    return await serve_webhook(webhook)


@pytest.mark.parametrize("servers", [1, 2])
def test_a_call_to_the_action_server_carries_the_turns_request_id(patched_requests: None,
                                                                   servers: int) -> None:
    seen: List[Optional[str]] = []

    async def scenario() -> None:
        runner, url = await _server(seen)
        endpoint = EndpointConfig(",".join([url] * servers), headers={"Authorization": "Bearer t"})
        try:
            token = request_id.set("turn-7")
            try:
                await endpoint.request(json={"next_action": "action_answer"}, method="post")
            finally:
                request_id.reset(token)
            await endpoint.request(json={"next_action": "action_answer"}, method="post")
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    assert seen == ["turn-7", None]  # outside any turn, no header


PROCESS = """
import logging, warnings
from rasa.utils.common import update_sanic_log_level
from sanic import Sanic
from bot import logs
from contract.logs import request_id

logs.configure("rasa")
Sanic("meso_logs_test")  # Rasa's server app: Sanic's own logging set-up
update_sanic_log_level()  # as Rasa does before serving: Sanic's loggers pass nothing on
request_id.set("turn-9")
logging.getLogger("sanic.error").error("Exception occurred while handling uri")
logging.getLogger("sanic.access").info("an access line: never written")
logging.getLogger("rasa.core.processor").debug("Received user message 'my scalp'")
logging.getLogger("bot.channels.meso").info("turn answered")
warnings.simplefilter("always")
warnings.warn("an old API", DeprecationWarning)
"""


def test_the_processes_write_json_lines_sanic_and_warnings_included() -> None:
    """In a process of its own, as Rasa's (the set-up replaces every handler of the process)."""
    done = subprocess.run([sys.executable, "-c", PROCESS], capture_output=True, text=True,
                          timeout=120, check=True)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["logger"], line["service"], line.get("request_id")) for line in lines] == [
        ("sanic.error", "rasa", "turn-9"), ("bot.channels.meso", "rasa", "turn-9"),
        ("py.warnings", "rasa", "turn-9")]
    assert "an old API" in lines[2]["message"]
    assert done.stderr == "" and "my scalp" not in done.stdout
