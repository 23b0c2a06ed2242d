"""The one store path for labels from outside: what a poll pulled or what a webhook said.

``sync`` (a poll) and ``serve`` (webhooks) both end here: ``record_pull`` in one transaction,
the cursor with it when a poll moved it. Both may run at once on one store, so two writers can
race to insert the same annotation version; the unique key refuses the second, and the whole
transaction is then simply run again, when the version is found stored and dropped as a duplicate.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from prefloop.store.db import session_scope
from prefloop.store.labels import PullCounts, record_pull, set_cursor
from prefloop.types import PullResult

__all__ = ["record_labels"]

_TRIES = 5


def record_labels(
    engine: Engine,
    backend: str,
    project: str,
    result: PullResult,
    labels_per_task: int = 1,
    *,
    move_cursor: bool = False,
) -> PullCounts:
    """Store ``result`` exactly once (``record_pull`` semantics); ``move_cursor``: a poll's cursor with it."""
    for attempt in range(_TRIES):
        try:
            with session_scope(engine) as session:
                counts = record_pull(session, backend, project, result, labels_per_task)
                if move_cursor:
                    set_cursor(session, backend, project, result.cursor)
            return counts
        except (IntegrityError, OperationalError) as exc:
            # IntegrityError: another writer stored the same version first; OperationalError:
            # PostgreSQL's serialization / deadlock answer or SQLite still busy after its timeout.
            if attempt == _TRIES - 1 or (isinstance(exc, OperationalError) and not _retryable(exc)):
                raise
    raise AssertionError("unreachable")


def _retryable(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return any(word in text for word in ("deadlock", "serializ", "locked", "busy"))
