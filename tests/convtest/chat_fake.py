"""A fake of the public chat API for the runner's unit tests, built from its contract.

Every body it sends is validated by the API's own response models (``api.schemas``), so
the fake cannot drift from what the real API sends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from api.schemas import TEST_KEY_HEADER, ConversationCreated, Replies

CID = "c" * 43
TOKEN = "t" * 43
KEY = "test-key-0123456789"

Answer = Callable[[str], dict[str, Any] | httpx.Response]


def message(text: str, **fields: Any) -> dict[str, Any]:
    return {"text": text, **fields}


@dataclass
class FakeChat:
    """Answers ``POST /api/v1/conversations`` and ``.../messages`` from a script."""

    answer: Answer
    opening: list[dict[str, Any]] = field(default_factory=lambda: [message("Hello.")])
    key: str = KEY
    sent: list[str] = field(default_factory=list)
    consents: list[bool] = field(default_factory=list)
    headers: list[httpx.Headers] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers)
        body = json.loads(request.content)
        understood = request.headers.get(TEST_KEY_HEADER) == self.key
        if request.url.path == "/api/v1/conversations":
            self.consents.append(body["consent"])
            created = ConversationCreated(
                conversation_id=CID, token=TOKEN, consent=body["consent"], messages=self.opening,
                understanding={"responses": ["utter_greet"] * len(self.opening)} if understood else None)
            return httpx.Response(201, json=created.model_dump(mode="json"))
        if (
            request.url.path != f"/api/v1/conversations/{CID}/messages"
            or request.headers.get("authorization") != f"Bearer {TOKEN}"
        ):  # as the real API: the id alone opens nothing
            return httpx.Response(404, json={"detail": "This conversation does not exist."})
        self.sent.append(body["text"])
        answer = self.answer(body["text"])
        if isinstance(answer, httpx.Response):
            return answer
        if not understood:
            answer = {**answer, "understanding": None}
        return httpx.Response(200, json=Replies.model_validate(answer).model_dump(mode="json"))

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler), base_url="http://chat.test")
