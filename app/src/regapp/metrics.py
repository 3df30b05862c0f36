"""Metrics of the app, correct under several gunicorn workers (prometheus-client multiprocess)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from regapp.db import Register, Unavailable

REQUESTS = Counter(
    "regapp_requests_total", "HTTP requests answered", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "regapp_request_seconds",
    "Time to answer a request",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REGISTRATIONS = Counter(
    "regapp_registrations_total", "Registrations submitted, by outcome", ["outcome"]
)
REFUSALS = Counter(
    "regapp_refusals_total", "Registrations refused, by field and reason", ["field", "reason"]
)
LOGINS = Counter("regapp_logins_total", "Logins, by outcome", ["outcome"])


class Waiting(Collector):
    """Held registrations waiting for a supervisor, read from the register at each scrape."""

    def __init__(self, db: Register):
        self.db = db

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("regapp_register_up", "1 when the register answered this scrape")
        waiting = GaugeMetricFamily(
            "regapp_held_waiting", "Suspected duplicates waiting for a supervisor's decision"
        )
        oldest = GaugeMetricFamily(
            "regapp_held_oldest_seconds", "Age of the oldest suspected duplicate still waiting"
        )
        try:
            with self.db.transaction() as cur:
                cur.execute(
                    "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(submitted_at)),"
                    " 0) AS age FROM register.held_registration WHERE decision IS NULL"
                )
                row = cur.fetchone() or {"n": 0, "age": 0}
            waiting.add_metric([], float(row["n"]))
            oldest.add_metric([], float(row["age"]))
            up.add_metric([], 1.0)
            yield waiting
            yield oldest
        except Unavailable:
            up.add_metric([], 0.0)
        yield up


def exposition(db: Register) -> bytes:
    live = CollectorRegistry()
    live.register(Waiting(db))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        workers = CollectorRegistry()
        MultiProcessCollector(workers)  # type: ignore[no-untyped-call]
        return generate_latest(workers) + generate_latest(live)
    return generate_latest(REGISTRY) + generate_latest(live)
