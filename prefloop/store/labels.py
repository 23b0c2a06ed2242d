"""Recording pulled labels with their edit history, deletions and the sync cursor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from prefloop.store.models import Annotator, Label, SyncCursor, Task, utcnow
from prefloop.store.pairs import insert_ignore, pairs_by_keys
from prefloop.types import AnnotatorRef, PullResult

__all__ = [
    "PullCounts",
    "annotator_id",
    "current_labels",
    "get_cursor",
    "record_pull",
    "set_cursor",
]


@dataclass
class PullCounts:
    new: int = 0
    edited: int = 0
    deleted: int = 0
    duplicates: int = 0
    unknown_pairs: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.new + self.edited + self.deleted


def annotator_id(session: Session, backend: str, who: AnnotatorRef) -> int:
    """Id of the annotator (backend, external id), created on first sight; the name follows the source."""
    insert_ignore(session, Annotator.__table__, [{"backend": backend, "external_id": who.external_id,
                                                 "name": who.name, "created_at": utcnow()}],
                  ["backend", "external_id"])
    row = session.scalars(
        select(Annotator).where(Annotator.backend == backend, Annotator.external_id == who.external_id)
    ).one()
    if who.name and row.name != who.name:
        row.name = who.name
    return row.id


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def record_pull(
    session: Session, backend: str, project: str, result: PullResult, labels_per_task: int = 1
) -> PullCounts:
    """Store what a pull found; safe to call again with the same (or an overlapping) result.

    * an annotation already stored at this ``(source_id, version)`` is dropped;
    * a new version of a stored annotation supersedes the current row, which is kept;
    * a stored, live annotation missing from ``result.alive`` for its pair is marked deleted.

    The caller commits this together with the new cursor (``set_cursor``), so labels
    and cursor are never out of step.
    """
    counts = PullCounts()
    now = utcnow()
    pairs = pairs_by_keys(session, [lb.pair_key for lb in result.labels] + list(result.alive))
    annotators: dict[str, int] = {}
    touched: set[int] = set()
    for pulled in result.labels:
        pair = pairs.get(pulled.pair_key)
        if pair is None:
            counts.unknown_pairs.append(pulled.pair_key)
            continue
        same_version = session.scalar(select(Label.id).where(
            Label.backend == backend, Label.project == project,
            Label.source_id == pulled.source_id, Label.version == pulled.version))
        if same_version is not None:
            counts.duplicates += 1
            continue
        if pulled.annotator.external_id not in annotators:
            annotators[pulled.annotator.external_id] = annotator_id(session, backend, pulled.annotator)
        previous = session.scalars(select(Label).where(
            Label.backend == backend, Label.project == project,
            Label.source_id == pulled.source_id, Label.is_current.is_(True))).all()
        label = Label(
            pair_id=pair.id, annotator_id=annotators[pulled.annotator.external_id],
            choice=pulled.choice.value, strength=pulled.strength,
            dimension=pulled.dimension or "overall", rationale=pulled.rationale,
            backend=backend, project=project, source_id=pulled.source_id, version=pulled.version,
            source_created_at=_aware(pulled.created_at), source_updated_at=_aware(pulled.updated_at),
            pulled_at=now, raw=pulled.raw, is_current=True,
        )
        session.add(label)
        session.flush()
        for old in previous:
            old.is_current = False
            old.superseded_by_id = label.id
        counts.edited += 1 if previous else 0
        counts.new += 0 if previous else 1
        touched.add(pair.id)

    for key, alive in result.alive.items():
        pair = pairs.get(key)
        if pair is None:
            continue
        stale = session.scalars(select(Label).where(
            Label.backend == backend, Label.project == project, Label.pair_id == pair.id,
            Label.is_current.is_(True), Label.deleted_at.is_(None), Label.source_id.not_in(alive))).all()
        for label in stale:
            label.deleted_at = now
            counts.deleted += 1
            touched.add(pair.id)
    session.flush()
    _update_task_status(session, backend, project, touched, labels_per_task)
    return counts


def _update_task_status(session: Session, backend: str, project: str, pair_ids: set[int], needed: int) -> None:
    for task in session.scalars(select(Task).where(
            Task.backend == backend, Task.project == project, Task.pair_id.in_(pair_ids),
            Task.status != "withdrawn")):
        n_live = session.scalar(select(func.count(func.distinct(Label.annotator_id))).where(
            Label.backend == backend, Label.project == project, Label.pair_id == task.pair_id,
            Label.is_current.is_(True), Label.deleted_at.is_(None)))
        task.status = "labeled" if (n_live or 0) >= needed else "pending"


def current_labels(session: Session, pair_id: int | None = None, include_deleted: bool = False) -> list[Label]:
    """Current (non-superseded) label rows, optionally for one pair."""
    query = select(Label).where(Label.is_current.is_(True))
    if pair_id is not None:
        query = query.where(Label.pair_id == pair_id)
    if not include_deleted:
        query = query.where(Label.deleted_at.is_(None))
    return list(session.scalars(query.order_by(Label.id)).unique())


def get_cursor(session: Session, backend: str, project: str) -> str | None:
    return session.scalar(select(SyncCursor.cursor).where(
        SyncCursor.backend == backend, SyncCursor.project == project))


def set_cursor(session: Session, backend: str, project: str, cursor: str | None) -> None:
    insert_ignore(session, SyncCursor.__table__, [{"backend": backend, "project": project, "cursor": None,
                                                  "updated_at": utcnow()}], ["backend", "project"])
    row = session.scalars(select(SyncCursor).where(
        SyncCursor.backend == backend, SyncCursor.project == project)).one()
    row.cursor = cursor
    row.updated_at = utcnow()
