"""Prometheus metrics of the API (``GET /metrics``, behind ``MESO_METRICS_TOKEN``).

Counted as they happen, in this worker: requests by route (the route's template, never a
conversation id), method and status, with their latency; the replies by kind (an answer from
the knowledge base, not sure, declined, a red flag by level, other conversation) and those
the safety net gave. Read at each scrape: whether Rasa, the action server, the database and Rasa's
tracker store answer (``meso_up``, the same checks as ``/readyz``), the staff notifications
waiting, retrying or given up, the red flags nobody has marked reviewed by level, and the
turns the write-behind holds. No message text, no id, no address is ever a label.

With several uvicorn workers behind one port (``python -m api.serve --workers N``), a scrape
reaches one of them and still reports every worker's counts: each worker keeps its counters
in files of a folder the workers share (prometheus-client's multiprocess mode, the folder
made fresh by ``api.serve`` at each start), and a scrape adds them up. A worker that died
and was replaced keeps its counts there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from api.rasa_client import RasaReply
from api.replies import batch_red_flag
from api.serve import SHARED_METRICS_ENV
from api.staff.inbox_query import FALLBACK_INTENT, LOW_CONFIDENCE

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
    """The counters of one app (a registry of its own: tests start many apps).

    Under several workers (:data:`api.serve.SHARED_METRICS_ENV` set when the worker started)
    a scrape reports the counts of every worker, read from their shared folder.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._counted = self.registry
        shared = os.environ.get(SHARED_METRICS_ENV)
        if shared:
            self._counted = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(self._counted, path=shared)
        self.requests = Counter("meso_http_requests", "HTTP requests answered",
                                ("route", "method", "status"), registry=self.registry)
        self.latency = Histogram("meso_http_request_seconds", "Time to answer a request",
                                 ("route",), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.replies = Counter("meso_replies", "Chat turns answered, by the kind of reply",
                               ("kind",), registry=self.registry)
        self.safety_net = Counter(
            "meso_safety_net_replies", "Red flags answered by the API's safety net because "
            "the bot or the database could not", registry=self.registry)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request (``api.request_log`` counts each)."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def reply(self, reply: RasaReply) -> None:
        self.replies.labels(reply_kind(reply)).inc()

    def render(self, scraped: Iterable[Metric]) -> bytes:
        """The text exposition: the counters, then the values read for this scrape."""
        once = CollectorRegistry(auto_describe=False)
        once.register(_Fixed(list(scraped)))
        return generate_latest(self._counted) + generate_latest(once)


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
