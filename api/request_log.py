"""Each request's id, its one log line (``api.access``) and its count in the metrics.

:class:`RequestLog` (pure ASGI, inside ``api.proxies.TrustedProxies``) gives every request an
id: the ``X-Request-ID`` a trusted reverse proxy sent (nginx's ``$request_id``), else a new
one. It keeps the id in ``contract.logs.request_id`` while the request runs, so every line
logged meanwhile carries it and the Rasa client sends it on (to Rasa's channel, and from
there to the action server); answers with it in ``X-Request-ID``; and, once the answer is
sent, logs one line: method, the route's template (never the path, which holds conversation
ids), status and time taken, and counts the same in ``api.metrics``. Health checks and metric
scrapes log at DEBUG.

An ``X-Request-ID`` from anyone else is ignored: a client cannot pick the id its requests
are logged under.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import Metrics
from api.proxies import PROXIED
from contract.logs import FIELDS, REQUEST_ID_HEADER, accepted_request_id, new_request_id, request_id

logger = logging.getLogger("api.access")

QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
"""Routes polled by machines: their lines are DEBUG."""
_HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")


def route_of(scope: Scope) -> str:
    """The template of the route that answered (``/api/v1/conversations/{conversation_id}``),
    or ``unmatched``."""
    return getattr(scope.get("route"), "path", None) or "unmatched"


def _proxied_id(scope: Scope) -> str | None:
    if not scope.get(PROXIED):
        return None
    for key, value in scope.get("headers", []):
        if key == _HEADER:
            return accepted_request_id(value.decode("latin-1").strip())
    return None


class RequestLog:
    """See the module's docstring. Pure ASGI: a few microseconds a request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _proxied_id(scope) or new_request_id()
        # Not reset afterwards: an unhandled error's 500 is sent outside this middleware, by
        # the same task, and carries the id too (api.main).
        request_id.set(rid)
        header = (_HEADER, rid.encode("latin-1"))
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = dict(message)
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route, seconds = route_of(scope), time.perf_counter() - started
            self._metrics.request(route, scope["method"], status, seconds)
            _log(scope["method"], route, status, seconds)


def _log(method: str, route: str, status: int, seconds: float) -> None:
    level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
    if not logger.isEnabledFor(level):
        return
    ms = round(seconds * 1000)
    fields: dict[str, Any] = {"method": method, "route": route, "status": status, "ms": ms}
    logger.log(level, "%s %s %d in %d ms", method, route, status, ms, extra={FIELDS: fields})
