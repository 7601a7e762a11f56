"""Each request's id and its log line (``api.request_log``): the id answered in
``X-Request-ID`` and sent on to Rasa; a trusted proxy's id kept, anyone else's ignored; one
line per request with the route's template and never a conversation id or message text."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from api_fakes import Harness, messages_url

from api.main import create_app
from contract.logs import FIELDS, RequestIdFilter

pytestmark = pytest.mark.anyio

PEER = "203.0.113.7"
"""The harness's client address (``api_fakes.running_app``)."""
NGINX_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "api.access"]


def webhook_ids(h: Harness) -> list[str | None]:
    return [r.headers.get("x-request-id") for r in h.rasa.requests
            if r.url.path == "/webhooks/meso/webhook"]


async def test_each_request_gets_an_id_that_reaches_rasa_and_its_log_line(
    h: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="api")
    caplog.handler.addFilter(RequestIdFilter())  # as the processes' one handler has
    conversation_id = await h.new_conversation()
    sent = await h.client.post(messages_url(conversation_id), json={"text": "my secret scalp story"})
    assert sent.status_code == 200, sent.text
    rid = sent.headers["x-request-id"]
    assert len(rid) == 32 and int(rid, 16) >= 0
    ids = webhook_ids(h)
    assert ids[-1] == rid and ids[0] != rid  # the opening turn had its own
    line = next(r for r in access_lines(caplog) if r.request_id == rid)  # type: ignore[attr-defined]
    fields = getattr(line, FIELDS)
    assert fields == {"method": "POST", "route": "/api/v1/conversations/{conversation_id}/messages",
                      "status": 200, "ms": fields["ms"]}
    assert line.levelno == logging.INFO
    # The rest of the turn's lines carry the same id.
    assert any(r.name == "api.routes.chat" and getattr(r, "request_id", None) == rid
               for r in caplog.records)
    everything = "\n".join(r.getMessage() + str(getattr(r, FIELDS, "")) for r in caplog.records)
    assert conversation_id not in everything and "secret scalp" not in everything


async def test_only_a_trusted_proxy_names_the_request_id(
    start: Callable[..., Any], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="api")
    async with start() as h:
        untrusted = await h.client.get("/healthz", headers={"x-request-id": NGINX_ID})
    async with start(trusted_proxies=[PEER]) as h:
        proxied = await h.client.get("/healthz", headers={"x-request-id": NGINX_ID})
        forged = await h.client.get("/healthz", headers={"x-request-id": "evil\tid"})
        conversation_id = await h.new_conversation()
        turn = await h.client.post(messages_url(conversation_id), json={"text": "hello"},
                                   headers={"x-request-id": "nginx-req-7"})
        assert webhook_ids(h)[-1] == "nginx-req-7"
    assert untrusted.headers["x-request-id"] != NGINX_ID
    assert proxied.headers["x-request-id"] == NGINX_ID
    assert forged.headers["x-request-id"] not in {"evil\tid", NGINX_ID}
    assert turn.headers["x-request-id"] == "nginx-req-7"


async def test_health_checks_log_at_debug_and_unknown_paths_by_no_path(
    h: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="api")
    await h.client.get("/healthz")
    await h.client.get("/api/v1/conversations/c0ffee-private-id/nowhere")
    lines = access_lines(caplog)
    assert [(r.levelno, getattr(r, FIELDS)["route"], getattr(r, FIELDS)["status"]) for r in lines] == [
        (logging.DEBUG, "/healthz", 200), (logging.INFO, "unmatched", 404)]
    assert "c0ffee" not in "\n".join(r.getMessage() for r in caplog.records)


async def test_an_unhandled_error_answers_with_its_request_id() -> None:
    app = create_app()  # never started: every request fails inside the app
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
    assert response.status_code == 500
    assert len(response.headers["x-request-id"]) == 32
