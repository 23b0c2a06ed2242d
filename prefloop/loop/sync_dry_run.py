"""``prefloop sync --dry-run``: what a real cycle would do, with nothing written anywhere.

The labels a real run would pull are pulled and recorded in a transaction that is rolled
back, so the milestone and the queue top-up are computed on them, exactly as the real run
would see them. Nothing else is touched: no lock file (a dry run only reads), no cursor, no
model, no embedding cache, no artifact. The simulated backend answers from a scratch copy
of its state folder, because its annotators act when it is pulled. A server backend is not
pulled before this store's first real pull from it: pulling makes Label Studio and Argilla
create a missing project, and a project this store never pulled from holds nothing of its.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from prefloop.backends import AnnotationBackend, make_backend
from prefloop.config import LoopConfig, backend_settings
from prefloop.loop.sync_report import SyncReport, milestone
from prefloop.store.db import session_scope
from prefloop.store.labels import PullCounts, get_cursor, record_pull
from prefloop.store.tasks import count_pending, selectable_count

__all__ = ["dry_run_cycle", "read_only_backend"]


@contextmanager
def read_only_backend(config: LoopConfig) -> Iterator[AnnotationBackend]:
    """The configured backend, made so that asking it changes nothing (the simulator on a scratch copy)."""
    settings = backend_settings(config)
    if config.backend.name != "simulated":
        yield make_backend(config.backend.name, settings)  # pulling from a server only reads
        return
    state = Path(str(settings.extra.get("state_dir") or settings.url).removeprefix("file://"))
    with tempfile.TemporaryDirectory(prefix="prefloop-dry-run-") as scratch:
        copy = Path(scratch) / "state"
        if state.is_dir():
            shutil.copytree(state, copy)
        settings.url = str(copy)
        settings.extra = {**settings.extra, "state_dir": str(copy)}
        yield make_backend(config.backend.name, settings)


def dry_run_cycle(
    engine: Engine,
    config: LoopConfig,
    *,
    log: Callable[[dict[str, Any]], None],
    backend: AnnotationBackend | None = None,
) -> Any:
    """Log the steps a real ``run_sync`` would take (connect, pull, train, push), each with ``dry_run: true``."""
    report = SyncReport()
    project = config.backend.project
    with read_only_backend(config) if backend is None else _given(backend) as backend:
        t = time.perf_counter()
        health = backend.health()
        health.raise_unless_ok(config.backend.name)
        log(report.step("connect", t, dry_run=True, backend=backend.name, project=project))
        t = time.perf_counter()
        with session_scope(engine) as session:
            try:
                cursor = get_cursor(session, backend.name, project)
                if cursor is None and backend.name != "simulated":
                    counts = PullCounts()
                    log(report.step("pull", t, dry_run=True, pulled=0, new=0, first_pull=True))
                else:
                    result = backend.pull_labels(since=cursor)
                    counts = record_pull(session, backend.name, project, result, config.backend.annotators_per_pair)
                    log(
                        report.step(
                            "pull",
                            t,
                            dry_run=True,
                            pulled=len(result.labels),
                            new=counts.new,
                            edited=counts.edited,
                            deleted=counts.deleted,
                            duplicates=counts.duplicates,
                            unknown_pairs=len(counts.unknown_pairs),
                        )
                    )
                t = time.perf_counter()
                due = milestone(session, config)
                log(
                    report.step(
                        "train",
                        t,
                        dry_run=True,
                        would_train=due.due,
                        model=due.model,
                        labels_since_model=due.since,
                        milestone=due.needed,
                    )
                )
                if due.due and config.milestone.audit_pairs > 0:  # the real run audits the new version
                    log(
                        report.step(
                            "audit", time.perf_counter(), dry_run=True, would_audit=config.milestone.audit_pairs
                        )
                    )
                t = time.perf_counter()
                pending = count_pending(session, backend.name, project)
                need = max(0, config.acquisition.queue_size - pending)
                would_push = min(need, selectable_count(session))
                strategy = config.acquisition.strategy if (due.model or due.due) else "random"
                log(report.step("push", t, dry_run=True, pending=pending, would_push=would_push, strategy=strategy))
            finally:
                session.rollback()
    report.changed = bool(counts.new + counts.edited + counts.deleted or due.due or would_push)
    return report


@contextmanager
def _given(backend: AnnotationBackend) -> Iterator[AnnotationBackend]:
    yield backend
