"""What ``GET /metrics`` shows, in Prometheus' text format (one registry per app, so tests can run several),
and the same counts as a dict for the dashboard's health panel (``webhook_summary``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from prefloop.store.labels import PullCounts

__all__ = ["ServeMetrics"]

#: click-to-stored is dominated by the annotation server; the store part should be milliseconds
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServeMetrics:
    """Counters of events by source and outcome, the store's latency, labels since the last model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "prefloop_serve_events_received", "Webhook deliveries received", ["source"], registry=self.registry
        )
        self.stored = Counter(
            "prefloop_serve_events_stored",
            "Deliveries whose labels were written to the store (committed before the 2xx answer)",
            ["source"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "prefloop_serve_events_rejected",
            "Deliveries not stored, by reason (unauthorized, bad_signature, stale_timestamp, too_large, "
            "bad_json, disconnected, malformed, unknown_event, other_project, backend_error, store_error)",
            ["source", "reason"],
            registry=self.registry,
        )
        self.labels = Counter(
            "prefloop_serve_labels",
            "Labels the stored deliveries carried, by what the store did with them (new, edited, deleted, "
            "duplicate, stale, after_delete, unknown_pair)",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.store_latency = Histogram(
            "prefloop_serve_store_latency_seconds",
            "From a delivery's arrival to its labels being committed",
            ["source"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.since_model = Gauge(
            "prefloop_serve_labels_since_last_model",
            "Live labels stored since the newest model was trained (the milestone counts these)",
            registry=self.registry,
        )
        self.last_stored = Gauge(
            "prefloop_serve_last_stored_timestamp_seconds",
            "When the newest delivery's labels were committed (Unix time; 0: none since this process started)",
            registry=self.registry,
        )
        self.last_stored_at: datetime | None = None
        self.follow_ups = Counter(
            "prefloop_serve_follow_ups",
            "Worker runs after new labels (rescore, milestone retrain, top-up), by result",
            ["result"],
            registry=self.registry,
        )

    def count_labels(self, source: str, counts: PullCounts) -> None:
        for outcome, n in (
            ("new", counts.new),
            ("edited", counts.edited),
            ("deleted", counts.deleted),
            ("duplicate", counts.duplicates),
            ("stale", counts.stale),
            ("after_delete", counts.after_delete),
            ("unknown_pair", len(counts.unknown_pairs)),
        ):
            if n:
                self.labels.labels(source, outcome).inc(n)

    def count_stored(self, source: str, seconds: float) -> None:
        """One delivery stored, ``seconds`` after it arrived."""
        self.stored.labels(source).inc()
        self.store_latency.labels(source).observe(seconds)
        self.last_stored_at = datetime.now(UTC)
        self.last_stored.set(self.last_stored_at.timestamp())

    def webhook_summary(self) -> dict[str, Any]:
        """This process's webhook counts (all sources together) and the time of the newest stored delivery
        (ISO 8601, UTC; None when none was stored yet): what the dashboard's health panel shows."""
        last = self.last_stored_at
        return {
            "received": _total(self.received),
            "stored": _total(self.stored),
            "rejected": _total(self.rejected),
            "last_stored_at": last.isoformat(timespec="seconds") if last else None,
        }

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _total(counter: Counter) -> int:
    """A labelled counter summed over its labels."""
    return int(sum(s.value for metric in counter.collect() for s in metric.samples if s.name.endswith("_total")))
