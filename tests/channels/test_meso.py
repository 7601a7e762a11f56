"""The API-facing Rasa channel never lets typed text act as an intent command."""

from __future__ import annotations

import pytest

from bot.channels.meso import as_words


@pytest.mark.parametrize(
    "typed, expected",
    [
        ('/inform{"x": 1}', 'inform{"x": 1}'),
        ("  //ask_cost", "ask_cost"),
        ("/ /restart", "restart"),
        ("how much is it?", "how much is it?"),
        ("price / session", "price / session"),
    ],
)
def test_leading_slashes_are_dropped(typed: str, expected: str) -> None:
    assert as_words(typed) == expected
    assert not as_words(typed).startswith("/")


@pytest.mark.asyncio
async def test_an_answer_keeps_its_sources_in_the_same_message() -> None:
    from bot.channels.meso import WholeMessagesOutput

    out = WholeMessagesOutput()
    await out.send_response("c1", {
        "text": "An answer", "buttons": [{"title": "More", "payload": "/ask_cost"}],
        "custom": {"sources": [{"id": "s", "title": "S", "url": None}], "topic": "cost"},
    })
    await out.send_response("c1", {"text": "Plain glue"})
    assert len(out.messages) == 2
    first, second = out.messages
    assert first["text"] == "An answer" and first["custom"]["topic"] == "cost"
    assert first["buttons"][0]["payload"] == "/ask_cost"
    assert second == {"recipient_id": "c1", "text": "Plain glue"}


@pytest.mark.asyncio
async def test_a_block_outside_the_contract_is_logged_as_it_leaves(caplog: pytest.LogCaptureFixture) -> None:
    from bot.channels.meso import WholeMessagesOutput

    out = WholeMessagesOutput()
    caplog.set_level("ERROR", logger="bot.channels.meso")
    await out.send_response("c1", {"text": "x", "custom": {"red_flag": {"level": "soonish"}, "topic": "cost"}})
    await out.send_response("c1", {"text": "y", "custom": {"red_flag": {"level": "crisis", "flags": []}}})
    logged = [r.getMessage() for r in caplog.records]
    assert logged == ["meso channel: red_flag block outside the contract (level), sender c1"]
    assert len(out.messages) == 2  # sent all the same: the API drops the block, keeps the text


# --- the channel authenticates its caller (the API, with Rasa's token) -----------------------

CHANNEL_TOKEN = "rasa-token-456"


async def _asgi(app, method: str, path: str, headers: dict | None = None, body=None):  # type: ignore[no-untyped-def]
    import asyncio
    import json

    raw = b"" if body is None else json.dumps(body).encode()
    head = {**({"content-type": "application/json"} if body is not None else {}), **(headers or {})}
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(k.encode(), v.encode()) for k, v in head.items()],
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 5005)}
    inbox = [{"type": "http.request", "body": raw, "more_body": False}]
    sent: list = []

    async def receive():  # type: ignore[no-untyped-def]
        if inbox:
            return inbox.pop(0)
        await asyncio.sleep(3600)

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(content) if content else None


class _Processor:
    """Rasa's processor as the channel uses it: a domain (here without intents) and a parse."""

    def __init__(self) -> None:
        from rasa.shared.core.domain import Domain

        self.domain = Domain.empty()  # Rasa's default intents only (restart, back, session_start)
        self.parsed: list[str] = []
        self.request_ids: list = []

    async def parse_message(self, message):  # type: ignore[no-untyped-def]
        from contract.logs import request_id

        self.parsed.append(message.text)
        self.request_ids.append(request_id.get())
        return {"intent": {"name": "greet", "confidence": 0.9}, "entities": []}


@pytest.fixture
def channel_app(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A Sanic app serving only the meso channel, a stand-in agent behind it."""
    from types import SimpleNamespace

    from sanic import Sanic

    from bot.channels.meso import MesoInput

    def make(credentials=None, env_token: str | None = CHANNEL_TOKEN):  # type: ignore[no-untyped-def]
        if env_token is None:
            monkeypatch.delenv("MESO_RASA_TOKEN", raising=False)
        else:
            monkeypatch.setenv("MESO_RASA_TOKEN", env_token)
        Sanic.test_mode = True
        app = Sanic(f"meso_channel_test_{id(credentials)}_{env_token}")
        app.ctx.agent = SimpleNamespace(processor=_Processor())
        received: list = []

        async def on_new_message(message):  # type: ignore[no-untyped-def]
            from contract.logs import request_id

            received.append(message)
            app.ctx.request_ids.append(request_id.get())
            await message.output_channel.send_text_message(message.sender_id, "hello")

        channel = MesoInput.from_credentials(credentials)
        app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/meso")
        app.ctx.received = received
        app.ctx.request_ids = []
        return app

    return make


async def _started(app):  # type: ignore[no-untyped-def]
    import asyncio

    events: asyncio.Queue = asyncio.Queue()
    replies: asyncio.Queue = asyncio.Queue()
    await events.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, events.get, replies.put))
    assert (await asyncio.wait_for(replies.get(), 30))["type"] == "lifespan.startup.complete"
    return task


MESSAGE = {"sender": "c" * 43, "message": "/restart", "command": True}


@pytest.mark.asyncio
@pytest.mark.parametrize("headers", [
    None,
    {"authorization": "Bearer not-the-token"},
    {"authorization": CHANNEL_TOKEN},
    {"authorization": f"Bearer {CHANNEL_TOKEN}0"},
])
async def test_a_caller_without_the_token_is_refused_before_anything_is_read(channel_app, headers) -> None:  # type: ignore[no-untyped-def]
    app = channel_app()
    task = await _started(app)
    try:
        status, body = await _asgi(app, "POST", "/webhooks/meso/webhook", headers, MESSAGE)
        assert (status, body) == (401, {"detail": "unauthorised"})
        assert app.ctx.received == []  # no sender, no /intent command reached Rasa
        assert (await _asgi(app, "GET", "/webhooks/meso/"))[0] == 200  # health stays open
    finally:
        task.cancel()


@pytest.mark.asyncio
async def test_the_api_holding_rasas_token_is_served(channel_app) -> None:  # type: ignore[no-untyped-def]
    app = channel_app()
    task = await _started(app)
    try:
        status, body = await _asgi(app, "POST", "/webhooks/meso/webhook",
                                   {"authorization": f"Bearer {CHANNEL_TOKEN}"}, MESSAGE)
        assert status == 200
        assert body["messages"][0]["text"] == "hello" and body["nlu"]["intent"] == "restart"
        assert [m.text for m in app.ctx.received] == ["/restart"]
        assert app.ctx.agent.processor.parsed == []  # a command of the domain skips the pipeline
    finally:
        task.cancel()


@pytest.mark.asyncio
@pytest.mark.parametrize("message, command, nlu", [
    ("hello there", False, "greet"),            # words: the pipeline reads them
    ("/restart", False, "greet"),               # slashes dropped: words, never a command
    ("/not_in_the_domain", True, "greet"),      # a command the domain lacks: the pipeline
])
async def test_words_and_unknown_commands_go_through_the_pipeline(channel_app, message, command, nlu) -> None:  # type: ignore[no-untyped-def]
    app = channel_app()
    task = await _started(app)
    try:
        status, body = await _asgi(app, "POST", "/webhooks/meso/webhook",
                                   {"authorization": f"Bearer {CHANNEL_TOKEN}"},
                                   {"sender": "c" * 43, "message": message, "command": command})
        assert (status, body["nlu"]["intent"]) == (200, nlu)
        assert app.ctx.agent.processor.parsed == [app.ctx.received[0].text]
    finally:
        task.cancel()


@pytest.mark.asyncio
async def test_without_any_token_configured_nobody_is_served(channel_app) -> None:  # type: ignore[no-untyped-def]
    app = channel_app(env_token=None)
    task = await _started(app)
    try:
        for headers in (None, {"authorization": "Bearer "}, {"authorization": "Bearer None"}):
            assert (await _asgi(app, "POST", "/webhooks/meso/webhook", headers, MESSAGE))[0] == 401
    finally:
        task.cancel()


@pytest.mark.asyncio
async def test_a_token_in_the_credentials_file_wins(channel_app) -> None:  # type: ignore[no-untyped-def]
    app = channel_app({"token": "from-credentials"})
    task = await _started(app)
    try:
        env_call = await _asgi(app, "POST", "/webhooks/meso/webhook",
                               {"authorization": f"Bearer {CHANNEL_TOKEN}"}, MESSAGE)
        file_call = await _asgi(app, "POST", "/webhooks/meso/webhook",
                                {"authorization": "Bearer from-credentials"}, MESSAGE)
        assert (env_call[0], file_call[0]) == (401, 200)
    finally:
        task.cancel()


@pytest.mark.asyncio
async def test_a_turn_runs_under_the_apis_request_id_and_logs_one_line_without_its_text(
    channel_app, caplog: pytest.LogCaptureFixture,
) -> None:  # type: ignore[no-untyped-def]
    from contract.logs import FIELDS, RequestIdFilter, request_id

    app = channel_app()
    caplog.set_level("INFO", logger="bot.channels.meso")
    caplog.handler.addFilter(RequestIdFilter())  # as the process's one handler has
    task = await _started(app)
    try:
        auth = {"authorization": f"Bearer {CHANNEL_TOKEN}"}
        turn = {"sender": "c" * 43, "message": "my secret scalp story", "command": False}
        assert (await _asgi(app, "POST", "/webhooks/meso/webhook", {**auth, "x-request-id": "api-req-1"},
                            turn))[0] == 200
        assert (await _asgi(app, "POST", "/webhooks/meso/webhook", {**auth, "x-request-id": "bad id"},
                            turn))[0] == 200
    finally:
        task.cancel()
    first, second = app.ctx.request_ids
    assert first == "api-req-1" and len(second) == 32  # a malformed id is replaced
    assert app.ctx.agent.processor.request_ids == [first, second]  # the parse thread's too
    assert request_id.get() is None  # nothing left behind
    lines = [r for r in caplog.records if r.name == "bot.channels.meso"]
    assert [(r.request_id, getattr(r, FIELDS)["messages"]) for r in lines] == [(first, 1), (second, 1)]
    assert not any("secret scalp" in r.getMessage() for r in caplog.records)
