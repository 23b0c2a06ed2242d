"""One writer thread: deliveries waiting to be stored are written together (group commit).

A handler hands its delivery's ``PullResult`` over and waits for the commit before it answers
2xx, so an answered delivery is stored and an unanswered one is redelivered (Argilla) or picked
up by the next poll (Label Studio). Whatever queued up while the previous transaction ran is
written in the next one: under load a transaction carries many deliveries, so the store keeps up
with hundreds of events a second; when idle, each delivery is its own transaction.

Deliveries of one (backend, project) are merged in arrival order into one result and stored by
``record_labels``, the path a poll takes: within it, a later version supersedes an earlier one,
an older one arriving late is dropped, and a deletion leaves a tombstone.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy import Engine

from prefloop.loop.record import record_labels
from prefloop.store.labels import PullCounts
from prefloop.types import PullResult

__all__ = ["Delivery", "StoreWriter"]

_MAX_BATCH = 500


@dataclass
class Delivery:
    """One webhook delivery's labels, on their way to the store."""

    backend: str
    project: str
    result: PullResult
    labels_per_task: int
    received: float = field(default_factory=time.perf_counter)
    done: Future[PullCounts] = field(default_factory=Future)


class StoreWriter:
    """Stores deliveries in arrival order, batching whatever waits; ``submit`` returns a future."""

    def __init__(self, engine: Engine, on_stored: Callable[[str, PullCounts], None] | None = None) -> None:
        self.engine = engine
        self.on_stored = on_stored  # once per transaction and backend: the metrics' label counts
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="prefloop-serve-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout=60)

    def submit(self, delivery: Delivery) -> Future[PullCounts]:
        self._queue.put(delivery)
        return delivery.done

    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = [first], False
            while len(batch) < _MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[Delivery]) -> None:
        groups: dict[tuple[str, str, int], list[Delivery]] = {}
        for delivery in batch:
            groups.setdefault((delivery.backend, delivery.project, delivery.labels_per_task), []).append(delivery)
        for (backend, project, per_task), members in groups.items():
            merged = PullResult(labels=[], cursor=None)
            for delivery in members:
                merged.labels.extend(delivery.result.labels)
                for source, when in delivery.result.deleted.items():
                    merged.deleted.setdefault(source, when)
            try:
                counts = record_labels(self.engine, backend, project, merged, per_task)
            except Exception as exc:  # the handlers answer 503; the sender retries or the next poll finds it
                for delivery in members:
                    delivery.done.set_exception(exc)
                continue
            if self.on_stored is not None:
                self.on_stored(backend, counts)
            for delivery in members:
                delivery.done.set_result(counts)
