"""Prometheus metrics of the API (``GET /metrics``, behind ``MESO_METRICS_TOKEN``).

Counted as they happen, in this worker: requests by route (the route's template, never a
conversation id), method and status, with their latency; the replies by kind (an answer from
the knowledge base, not sure, declined, a red flag by level, other conversation) and those
the safety net gave. Read at each scrape: whether Rasa, the action server, the database and Rasa's
tracker store answer (``meso_up``, the same checks as ``/readyz``), the staff notifications
waiting, retrying or given up, the red flags nobody has marked reviewed by level, and the
turns the write-behind holds. No message text, no id, no address is ever a label.

With several uvicorn workers behind one port, a scrape reaches one of them: its counters
are that worker's; the values read at scrape time are everyone's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from api.rasa_client import RasaReply
from api.replies import batch_red_flag
from api.staff.inbox_query import FALLBACK_INTENT, LOW_CONFIDENCE

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def reply_kind(reply: RasaReply) -> str:
    """What a turn's reply was, for ``meso_replies_total``."""
    level = batch_red_flag(reply.messages)
    if level is not None:
        return f"red_flag_{level}"
    if any(m.custom is not None and m.custom.declined for m in reply.messages):
        return "declined"
    nlu = reply.nlu
    if nlu is not None and (nlu.intent == FALLBACK_INTENT
                            or (nlu.confidence is not None and nlu.confidence < LOW_CONFIDENCE)):
        return "not_sure"
    if any(m.custom is not None and m.custom.entry_id for m in reply.messages):
        return "answer"
    return "conversation"


class Metrics:
    """The counters of one app (a registry of its own: tests start many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("meso_http_requests", "HTTP requests answered",
                                ("route", "method", "status"), registry=self.registry)
        self.latency = Histogram("meso_http_request_seconds", "Time to answer a request",
                                 ("route",), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.replies = Counter("meso_replies", "Chat turns answered, by the kind of reply",
                               ("kind",), registry=self.registry)
        self.safety_net = Counter(
            "meso_safety_net_replies", "Red flags answered by the API's safety net because "
            "the bot or the database could not", registry=self.registry)

    def reply(self, reply: RasaReply) -> None:
        self.replies.labels(reply_kind(reply)).inc()

    def render(self, scraped: Iterable[Metric]) -> bytes:
        """The text exposition: the counters, then the values read for this scrape."""
        once = CollectorRegistry(auto_describe=False)
        once.register(_Fixed(list(scraped)))
        return generate_latest(self.registry) + generate_latest(once)


class _Fixed:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def gauge(name: str, documentation: str, labels: tuple[str, ...],
          values: Iterable[tuple[tuple[str, ...], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family


class MetricsMiddleware:
    """Counts every HTTP request by its route's template, method and status (pure ASGI:
    a few microseconds a request)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self._metrics.requests.labels(route, scope["method"], str(status)).inc()
            self._metrics.latency.labels(route).observe(time.perf_counter() - started)
