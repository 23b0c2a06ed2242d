"""What ``GET /metrics`` shows, in Prometheus' text format (one registry per app, so tests can run several)."""

from __future__ import annotations

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

    def render(self) -> bytes:
        return generate_latest(self.registry)
