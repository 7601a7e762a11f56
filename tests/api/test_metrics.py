"""Prometheus metrics (``GET /metrics``, ``api.metrics``): served only with the token;
requests counted by route template (never an id), replies by kind, the components' health,
the staff notices not sent and the red flags nobody reviewed; no message text anywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fakes import CALLBACK_REQUEST, Harness, messages_url, rasa_tracker_db
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from api.settings import Settings

pytestmark = pytest.mark.anyio

TOKEN = "m" * 40
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}


def replying(*custom: dict[str, Any], intent: str = "ask_cost", confidence: float = 0.9) -> Any:
    def reply(sender: str, message: str, command: bool) -> dict[str, Any]:
        return {"messages": [{"text": "Noted.", "custom": c} for c in custom] or [{"text": "Noted."}],
                "nlu": {"intent": intent, "confidence": confidence}}
    return reply


async def scrape(h: Harness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await h.client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


async def test_without_the_setting_there_is_no_metrics_page_and_without_the_token_no_entry(
    h: Harness, start: Callable[..., Any],
) -> None:
    assert (await h.client.get("/metrics", headers=SCRAPER)).status_code == 404
    async with start(metrics_token=TOKEN) as served:
        assert (await served.client.get("/metrics")).status_code == 401
        wrong = await served.client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(metrics_token="short")


async def test_requests_by_route_and_replies_by_kind_with_no_id_or_text(
    start: Callable[..., Any],
) -> None:
    async with start(metrics_token=TOKEN) as h:
        conversation_id = await h.new_conversation()
        turns = [
            replying({"entry_id": "cost-per-session", "topic": "cost"}),
            replying(intent="nlu_fallback", confidence=0.3),
            replying({"declined": "dose"}, intent="ask_dose"),
            replying({"red_flag": {"level": "same_day"}}),
            replying({"red_flag": {"level": "emergency"}}),
            replying(intent="greet"),
        ]
        for n, reply in enumerate(turns):
            h.rasa.reply = reply
            sent = await h.client.post(messages_url(conversation_id), json={"text": f"secret words {n}"})
            assert sent.status_code == 200, sent.text
        assert (await h.client.get(f"/api/v1/conversations/{conversation_id}/nothing-here")).status_code == 404
        text = (await h.client.get("/metrics", headers=SCRAPER)).text
        values = await scrape(h)
    assert conversation_id not in text and "secret words" not in text
    route = "/api/v1/conversations/{conversation_id}/messages"
    assert values[("meso_http_requests_total", (("method", "POST"), ("route", route), ("status", "200")))] == 6
    assert values[("meso_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert values[("meso_http_request_seconds_count", (("route", route),))] == 6
    kinds = {dict(labels)["kind"]: value for (name, labels), value in values.items()
             if name == "meso_replies_total"}
    assert kinds == {"answer": 1, "not_sure": 1, "declined": 1, "red_flag_same_day": 1,
                     "red_flag_emergency": 1, "conversation": 1}


async def test_component_health_notices_and_unreviewed_red_flags_are_read_at_each_scrape(
    start: Callable[..., Any], tracker_path: Path,
) -> None:
    rasa_tracker_db(tracker_path, {})
    async with start(metrics_token=TOKEN) as h:
        flagged, reviewed = await h.new_conversation(), await h.new_conversation()
        h.rasa.reply = replying({"red_flag": {"level": "crisis"}}, {"callback": CALLBACK_REQUEST})
        for conversation_id in (flagged, reviewed):
            await h.client.post(messages_url(conversation_id), json={"text": "help"})
        h.execute("UPDATE conversations SET reviewed_at = red_flag_at WHERE id = ?", reviewed)
        h.execute("UPDATE staff_notifications SET attempts = 3 WHERE kind = 'callback'")
        values = await scrape(h)
        h.rasa.status = lambda: httpx.Response(503)  # Rasa stops answering
        down = await scrape(h)
    up = {dict(labels)["component"]: value for (name, labels), value in values.items() if name == "meso_up"}
    assert up == {"rasa": 1, "action_server": 1, "database": 1, "tracker_store": 1}
    assert values[("meso_staff_notifications", (("state", "waiting"),))] == 2  # the red flags
    assert values[("meso_staff_notifications", (("state", "retrying"),))] == 2  # the callbacks
    assert values[("meso_red_flags_unreviewed", (("level", "crisis"),))] == 1
    assert down[("meso_up", (("component", "rasa"),))] == 0


async def test_requests_through_a_trusted_proxy_are_counted_by_their_route(
    start: Callable[..., Any],
) -> None:
    """The proxy layer keeps the request's scope (the metrics, outside it, read the route the
    router found there)."""
    async with start(metrics_token=TOKEN, trusted_proxies=["203.0.113.7"]) as h:
        await h.client.get("/healthz", headers={"x-forwarded-for": "198.51.100.20"})
        values = await scrape(h)
    assert values[("meso_http_requests_total", (("method", "GET"), ("route", "/healthz"), ("status", "200")))] == 1
    assert ("meso_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "200"))) not in values
