"""The OpenAPI document describes the whole public API v1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

CREATE = "/api/v1/conversations"
SEND = "/api/v1/conversations/{conversation_id}/messages"
CONVERSATION = "/api/v1/conversations/{conversation_id}"
SUMMARY = "/api/v1/summaries/{link}"
SUMMARY_JSON = "/api/v1/conversations/{conversation_id}/summary.json"
FEEDBACK = "/api/v1/conversations/{conversation_id}/feedback"
WIDGET_CONFIG = "/api/v1/widget/config"


@pytest.fixture
async def spec(start: Callable[..., Any]) -> dict[str, Any]:
    async with start(api_docs=True) as h:  # served only with MESO_API_DOCS on
        response = await h.client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def ref(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


async def test_all_v1_routes_and_probes_are_listed(spec: dict[str, Any]) -> None:
    assert set(spec["paths"]) == {
        CREATE,
        CONVERSATION,
        SEND,
        SUMMARY,
        SUMMARY_JSON,
        FEEDBACK,
        WIDGET_CONFIG,
        "/healthz",
        "/readyz",
    }
    assert "post" in spec["paths"][CREATE] and "post" in spec["paths"][SEND]
    assert "get" in spec["paths"][SEND], "the history is read at the same URL"
    assert "post" in spec["paths"][FEEDBACK] and "get" in spec["paths"][WIDGET_CONFIG]
    assert "get" in spec["paths"][SUMMARY] and "get" in spec["paths"][SUMMARY_JSON]
    assert set(spec["paths"][CONVERSATION]) == {"delete"}


async def test_every_call_on_a_conversation_asks_for_its_token(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["ConversationToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    secured = {
        (path, method)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") == [{"ConversationToken": []}]
    }
    assert secured == {
        (SEND, "post"),
        (SEND, "get"),
        (CONVERSATION, "delete"),
        (FEEDBACK, "post"),
        (SUMMARY_JSON, "get"),
    }
    # The token never goes in a URL: no route takes it as a path or query parameter.
    for operations in spec["paths"].values():
        for operation in operations.values():
            names = {p["name"].lower() for p in operation.get("parameters", [])}
            assert not names & {"token", "authorization"}


async def test_message_schema_matches_the_contract(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    message = schemas["Message"]
    assert set(message["properties"]) == {
        "id",
        "role",
        "text",
        "buttons",
        "sources",
        "topic",
        "entry",
        "red_flag",
        "summary_url",
        "feedback",
        "figures",
    }
    assert message["properties"]["role"]["enum"] == ["assistant", "patient"]
    # What the assistant understood goes only to a conversation test holding the test key.
    assert set(schemas["Understanding"]["properties"]) == {
        "intent", "confidence", "actions", "responses", "slots",
    }
    for reply in ("Replies", "ConversationCreated"):
        assert "understanding" in schemas[reply]["properties"]
    assert ref(message["properties"]["buttons"]["items"]) == "Button"
    assert ref(message["properties"]["sources"]["items"]) == "Source"
    assert set(schemas["Button"]["required"]) == {"title", "payload"}
    assert set(schemas["Source"]["properties"]) == {"id", "title", "url"}
    assert ref(message["properties"]["figures"]["items"]) == "Figure"
    assert set(schemas["Figure"]["required"]) == {"per_100", "label", "alt"}
    assert set(schemas["ConversationCreated"]["properties"]) == {
        "conversation_id",
        "token",
        "consent",
        "messages",
        "understanding",
    }
    assert ref(schemas["Replies"]["properties"]["messages"]["items"]) == "Message"
    assert ref(schemas["History"]["properties"]["messages"]["items"]) == "Message"
    assert schemas["MessageIn"]["required"] == ["text"]
    assert set(schemas["MessageIn"]["properties"]) == {"text", "client_id"}
    assert set(schemas["ConversationIn"]["properties"]) == {"consent"}
    assert set(schemas["FeedbackIn"]["required"]) == {"message_id", "rating"}
    assert set(schemas["WidgetConfig"]["required"]) == {
        "clinic",
        "emergency_number",
        "transcript_idle_minutes",
        "max_text_chars",
    }


async def test_responses_and_errors_are_documented(spec: dict[str, Any]) -> None:
    create = spec["paths"][CREATE]["post"]["responses"]
    send = spec["paths"][SEND]["post"]["responses"]
    body = "application/json"
    assert ref(create["201"]["content"][body]["schema"]) == "ConversationCreated"
    assert ref(send["200"]["content"][body]["schema"]) == "Replies"
    for status in ("422", "429", "503"):
        assert ref(create[status]["content"][body]["schema"]) == "ErrorBody"
    for status in ("404", "413", "422", "429", "503"):
        assert ref(send[status]["content"][body]["schema"]) == "ErrorBody"
    read = spec["paths"][SEND]["get"]["responses"]
    assert ref(read["200"]["content"][body]["schema"]) == "History"
    for status in ("404", "422", "429", "503"):
        assert ref(read[status]["content"][body]["schema"]) == "ErrorBody"
    rate = spec["paths"][FEEDBACK]["post"]["responses"]
    assert "204" in rate and "content" not in rate["204"]
    for status in ("404", "422", "429"):
        assert ref(rate[status]["content"][body]["schema"]) == "ErrorBody"
    config = spec["paths"][WIDGET_CONFIG]["get"]["responses"]
    assert ref(config["200"]["content"][body]["schema"]) == "WidgetConfig"
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    readyz = spec["paths"]["/readyz"]["get"]["responses"]
    assert ref(readyz["503"]["content"][body]["schema"]) == "Readiness"


async def test_summary_routes_are_documented(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    message = schemas["Message"]["properties"]
    assert message["red_flag"]["anyOf"][0]["enum"] == ["prompt", "same_day", "emergency", "crisis"]
    assert set(schemas["Summary"]["required"]) == {"title", "generated_at", "sections"}
    assert ref(schemas["SummarySection"]["properties"]["items"]["items"]) == "SummaryItem"

    page = spec["paths"][SUMMARY]["get"]
    assert page["tags"] == ["summary"] and page["description"]
    for status in ("200", "404", "429"):
        assert set(page["responses"][status]["content"]) == {"text/html"}
    document = spec["paths"][SUMMARY_JSON]["get"]["responses"]
    body = "application/json"
    assert ref(document["200"]["content"][body]["schema"]) == "Summary"
    for status in ("404", "422", "429"):
        assert ref(document[status]["content"][body]["schema"]) == "ErrorBody"
