"""The action server (bot.action_server) refuses every call without Rasa's shared secret.

The real app (rasa_sdk's, every module under actions/ registered) is driven in-process
through its ASGI interface.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator

import pytest
import pytest_asyncio

TOKEN = "action-secret-123"
GOOD = {"authorization": f"Bearer {TOKEN}"}


async def call(app: Any, method: str, path: str, headers: dict[str, str] | None = None,
               body: Any = None) -> tuple[int, Any]:
    status, _, content = await exchange(app, method, path, headers, body)
    return status, content


async def exchange(app: Any, method: str, path: str, headers: dict[str, str] | None = None,
                   body: Any = None) -> tuple[int, dict[str, str], Any]:
    """One request through the app's ASGI interface: status, response headers, JSON body."""
    raw = b"" if body is None else json.dumps(body).encode()
    head = {**({"content-type": "application/json"} if body is not None else {}), **(headers or {})}
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(k.encode(), v.encode()) for k, v in head.items()],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 5055),
    }
    inbox = [{"type": "http.request", "body": raw, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answered = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
    return start["status"], answered, json.loads(content) if content else None


@pytest_asyncio.fixture
async def app() -> AsyncIterator[Any]:
    from sanic import Sanic

    from bot.action_server import create_app

    Sanic.test_mode = True  # several apps named "rasa_sdk" in one process
    server = create_app(TOKEN, "actions")
    events: asyncio.Queue = asyncio.Queue()
    replies: asyncio.Queue = asyncio.Queue()
    await events.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(server({"type": "lifespan", "asgi": {"version": "3.0"}},
                                          events.get, replies.put))
    assert (await asyncio.wait_for(replies.get(), 60))["type"] == "lifespan.startup.complete"
    yield server
    lifespan.cancel()


def _action_call(name: str) -> dict[str, Any]:
    return {
        "next_action": name, "sender_id": "c1", "version": "3.6.2", "domain": {},
        "tracker": {"sender_id": "c1", "slots": {}, "latest_message": {"text": "hi", "intent": {},
                                                                        "entities": []},
                    "events": [], "paused": False, "followup_action": None,
                    "active_loop": {}, "latest_action_name": None},
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("headers", [
    None,
    {"authorization": "Bearer wrong-secret"},
    {"authorization": TOKEN},  # the scheme is part of the value
    {"authorization": f"Bearer {TOKEN}x"},
    {"authorization": f"bearer {TOKEN[:-1]}"},
    {"x-meso-action-token": TOKEN},
])
async def test_a_call_without_the_secret_is_refused(app: Any, headers: dict[str, str] | None) -> None:
    status, body = await call(app, "POST", "/webhook", headers, _action_call("action_clinic_contact"))
    assert (status, body) == (401, {"error": "unauthorised"})
    assert (await call(app, "GET", "/actions", headers))[0] == 401
    assert (await call(app, "GET", "/anything-else", headers))[0] == 401


@pytest.mark.asyncio
async def test_health_needs_no_secret_and_tells_nothing(app: Any) -> None:
    assert await call(app, "GET", "/health") == (200, {"status": "ok"})


@pytest.mark.asyncio
async def test_with_the_secret_every_action_module_is_served(app: Any) -> None:
    import inspect
    import pkgutil

    from rasa_sdk import Action

    import actions

    status, listed = await call(app, "GET", "/actions", GOOD)
    assert status == 200
    names = {entry["name"] for entry in listed}
    registered_modules = set()
    for module in pkgutil.iter_modules(actions.__path__):
        imported = __import__(f"actions.{module.name}", fromlist=["_"])
        for value in vars(imported).values():
            if (isinstance(value, type) and issubclass(value, Action) and not inspect.isabstract(value)
                    and value.__module__ == imported.__name__):
                registered_modules.add(module.name)
                assert value().name() in names, value
    assert registered_modules  # at least the modules defining actions were checked
    status, body = await call(app, "POST", "/webhook", GOOD, _action_call("no_such_action"))
    assert status == 404 and body["action_name"] == "no_such_action"  # reached rasa_sdk


@pytest.mark.asyncio
async def test_each_call_is_logged_under_rasas_request_id_and_never_with_its_body(
    app: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    from contract.logs import FIELDS, RequestIdFilter

    caplog.set_level(logging.DEBUG, logger="bot.action_server")
    caplog.handler.addFilter(RequestIdFilter())  # as the process's one handler has
    body = _action_call("no_such_action")  # rasa_sdk's own answer: 404
    body["tracker"]["latest_message"]["text"] = "my secret scalp story"
    served = await exchange(app, "POST", "/webhook", {**GOOD, "x-request-id": "turn-42"}, body)
    refused = await exchange(app, "POST", "/webhook", {"x-request-id": "turn-43"}, body)
    health = await exchange(app, "GET", "/health", {"x-request-id": "bad id"})
    assert (served[0], refused[0], health[0]) == (404, 401, 200)
    assert served[1]["x-request-id"] == "turn-42" and refused[1]["x-request-id"] == "turn-43"
    fresh = health[1]["x-request-id"]
    assert len(fresh) == 32 and fresh != "bad id"
    lines = [(r.levelno, r.request_id, getattr(r, FIELDS, {}).get("status"))  # type: ignore[attr-defined]
             for r in caplog.records if r.name == "bot.action_server"]
    assert lines == [(logging.INFO, "turn-42", 404), (logging.WARNING, "turn-43", None),
                     (logging.INFO, "turn-43", 401), (logging.DEBUG, fresh, 200)]
    assert not any("secret scalp" in r.getMessage() for r in caplog.records)


def test_the_comparison_is_exact() -> None:
    from bot.action_server import authorised

    assert authorised(f"Bearer {TOKEN}", TOKEN)
    assert not authorised(None, TOKEN)
    assert not authorised("", TOKEN)
    assert not authorised("Bearer ", "")  # no secret configured: nobody
    assert not authorised(f"Bearer {TOKEN} ", TOKEN)


def test_no_app_without_a_secret() -> None:
    from bot.action_server import token_check

    with pytest.raises(ValueError):
        token_check("")


def test_the_launcher_refuses_to_start_without_the_secret(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from bot import action_server

    monkeypatch.delenv(action_server.TOKEN_ENV, raising=False)
    assert action_server.main(["--actions", "actions", "--port", "1"]) == 2
    assert action_server.TOKEN_ENV in capsys.readouterr().err
    monkeypatch.setenv(action_server.TOKEN_ENV, "s")
    monkeypatch.setenv("MESO_LOG_FORMAT", "xml")
    assert action_server.main(["--actions", "actions", "--port", "1"]) == 2
    assert "MESO_LOG_FORMAT must be one of json, text" in capsys.readouterr().err
