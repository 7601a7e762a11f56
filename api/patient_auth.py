"""How a client holds a conversation's secret: the token, never the id, opens a conversation.

``POST /api/v1/conversations`` returns ``conversation_id`` and ``token``; every later call on
that conversation sends ``Authorization: Bearer <token>``. :class:`PatientKeys` is that
client-side bookkeeping as an ``httpx.Auth``, for the repository's own clients (evaluation,
benchmark, conversation tests) and the tests: it keeps the token from each creation response
and sends it on that conversation's later calls, as the widget does. A request that already
carries an ``Authorization`` header is sent as it is.
"""

from __future__ import annotations

import re
from collections.abc import Generator

import httpx

CONVERSATIONS_PATH = "/api/v1/conversations"
_CONVERSATION_PATH = re.compile(re.escape(CONVERSATIONS_PATH) + r"/([A-Za-z0-9_-]+)(?:/|$)")


def bearer(token: str) -> dict[str, str]:
    """The header that opens a conversation."""
    return {"Authorization": f"Bearer {token}"}


class PatientKeys(httpx.Auth):
    """The tokens of the conversations this client created, by conversation id."""

    requires_response_body = True

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path = request.url.path
        match = _CONVERSATION_PATH.search(path)
        if match and "authorization" not in request.headers:
            token = self.tokens.get(match.group(1))
            if token is not None:
                request.headers.update(bearer(token))
        response = yield request
        if (
            request.method == "POST"
            and path.rstrip("/").endswith(CONVERSATIONS_PATH)
            and response.status_code == 201
        ):
            body = response.json()
            self.tokens[str(body["conversation_id"])] = str(body["token"])
