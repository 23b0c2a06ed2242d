"""Recording pulled labels with their edit history, deletions and the sync cursor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from prefloop.store.gold import mark_gold_labels
from prefloop.store.models import Annotator, Label, LabelTombstone, SyncCursor, Task, utcnow
from prefloop.store.pairs import chunks, insert_ignore, pair_ids_by_keys
from prefloop.types import AnnotatorRef, PullResult

__all__ = [
    "PullCounts",
    "annotator_id",
    "annotator_ids",
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
    #: an older version arriving after a newer one (events out of order): dropped
    stale: int = 0
    #: a label of an annotation already deleted (its delete event came first): dropped
    after_delete: int = 0

    @property
    def changed(self) -> int:
        return self.new + self.edited + self.deleted


def annotator_id(session: Session, backend: str, who: AnnotatorRef) -> int:
    """Id of the annotator (backend, external id), created on first sight; the name follows the source."""
    insert_ignore(
        session,
        Annotator.__table__,
        [{"backend": backend, "external_id": who.external_id, "name": who.name, "created_at": utcnow()}],
        ["backend", "external_id"],
    )
    row = session.scalars(
        select(Annotator).where(Annotator.backend == backend, Annotator.external_id == who.external_id)
    ).one()
    if who.name and row.name != who.name:
        row.name = who.name
    return row.id


def annotator_ids(session: Session, backend: str, people: list[AnnotatorRef]) -> dict[str, int]:
    """``annotator_id`` for many at once: one insert and one read, however many labels a pull carries."""
    wanted = {who.external_id: who for who in people}
    if not wanted:
        return {}
    now = utcnow()
    rows = [{"backend": backend, "external_id": e, "name": w.name, "created_at": now} for e, w in wanted.items()]
    for chunk in chunks(rows):
        insert_ignore(session, Annotator.__table__, chunk, ["backend", "external_id"])
    out: dict[str, int] = {}
    for chunk in chunks(sorted(wanted)):
        for row in session.scalars(
            select(Annotator).where(Annotator.backend == backend, Annotator.external_id.in_(chunk))
        ):
            name = wanted[row.external_id].name
            if name and row.name != name:
                row.name = name
            out[row.external_id] = row.id
    return out


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
    * a stored, live annotation missing from ``result.alive`` for its pair is marked deleted;
    * an annotation named in ``result.deleted`` is marked deleted and remembered (a tombstone),
      and a version older than the stored current one is dropped, so events that arrive out of
      order (``prefloop serve``) leave the store as a poll after them would.

    What is already stored is read in a few chunked queries, not one per label, so a first
    pull of tens of thousands of annotations stays fast. The caller commits this together
    with the new cursor (``set_cursor``), so labels and cursor are never out of step.
    """
    counts = PullCounts()
    now = utcnow()
    pairs = pair_ids_by_keys(session, [lb.pair_key for lb in result.labels] + list(result.alive))
    stored, newest = _stored_versions(session, backend, project, {lb.source_id for lb in result.labels})
    touched: set[int] = set()
    if result.deleted:
        counts.deleted += _record_deletions(session, backend, project, result.deleted, now, touched)
    gone = _tombstoned(session, backend, project, {_annotation_id(lb.source_id) for lb in result.labels})
    annotators = annotator_ids(session, backend, [lb.annotator for lb in result.labels if lb.pair_key in pairs])
    superseded: list[tuple[int | Label, Label]] = []  # (old row: stored id or a row added above, its successor)
    for pulled in result.labels:
        pair_id = pairs.get(pulled.pair_key)
        if pair_id is None:
            counts.unknown_pairs.append(pulled.pair_key)
            continue
        if _annotation_id(pulled.source_id) in gone:
            counts.after_delete += 1
            continue
        versions = stored.setdefault(pulled.source_id, {})
        if pulled.version in versions:
            counts.duplicates += 1
            continue
        updated = _aware(pulled.updated_at)
        latest = newest.get(pulled.source_id)
        if updated is not None and latest is not None and updated < latest:
            counts.stale += 1
            continue
        if updated is not None:
            newest[pulled.source_id] = updated
        label = Label(
            pair_id=pair_id,
            annotator_id=annotators[pulled.annotator.external_id],
            choice=pulled.choice.value,
            strength=pulled.strength,
            dimension=pulled.dimension or "overall",
            rationale=pulled.rationale,
            backend=backend,
            project=project,
            source_id=pulled.source_id,
            version=pulled.version,
            source_created_at=_aware(pulled.created_at),
            source_updated_at=_aware(pulled.updated_at),
            pulled_at=now,
            raw=pulled.raw,
            is_current=True,
        )
        session.add(label)
        previous = [row for row, current in versions.values() if current]
        if previous:  # an edit: the old rows stay, pointing at their successor
            superseded.extend((row, label) for row in previous)
            for version, (row, _) in list(versions.items()):
                versions[version] = (row, False)
            counts.edited += 1
        else:
            counts.new += 1
        versions[pulled.version] = (label, True)
        touched.add(pair_id)
    session.flush()
    _supersede(session, superseded)
    counts.deleted += _mark_deleted(session, backend, project, pairs, result.alive, now, touched)
    _update_task_status(session, backend, project, touched, labels_per_task)
    mark_gold_labels(session, backend, project, touched)
    return counts


def _supersede(session: Session, superseded: list[tuple[int | Label, Label]]) -> None:
    """Mark old rows not current, each pointing at its successor (one executemany, after the flush)."""
    if not superseded:
        return
    table = Label.__table__
    stmt = (
        update(table)
        .where(table.c.id == bindparam("old_id"))
        .values(is_current=False, superseded_by_id=bindparam("new_id"))
    )
    params = [{"old_id": old if isinstance(old, int) else old.id, "new_id": new.id} for old, new in superseded]
    session.execute(stmt, params)
    for old, _ in superseded:  # rows added in this call were changed behind the session's back
        if isinstance(old, Label):
            session.expire(old)


def _stored_versions(
    session: Session, backend: str, project: str, source_ids: set[str]
) -> tuple[dict[str, dict[str, tuple[int | Label, bool]]], dict[str, datetime]]:
    """source id → {version: (label id, is current)} for what is already stored, and the
    source's newest ``source_updated_at`` among them."""
    out: dict[str, dict[str, tuple[int | Label, bool]]] = {}
    newest: dict[str, datetime] = {}
    for chunk in chunks(sorted(source_ids)):
        rows = session.execute(
            select(Label.source_id, Label.version, Label.id, Label.is_current, Label.source_updated_at).where(
                Label.backend == backend, Label.project == project, Label.source_id.in_(chunk)
            )
        )
        for source_id, version, row_id, current, updated in rows:
            out.setdefault(source_id, {})[version] = (row_id, bool(current))
            updated = _aware(updated)
            if updated is not None and (source_id not in newest or updated > newest[source_id]):
                newest[source_id] = updated
    return out, newest


def _annotation_id(source_id: str) -> str:
    """The annotation a label comes from: a dimension's label ``<id>:<dimension>`` belongs to ``<id>``."""
    return source_id.split(":", 1)[0]


def _tombstoned(session: Session, backend: str, project: str, annotation_ids: set[str]) -> set[str]:
    """Which of these annotations a delete event has already removed."""
    out: set[str] = set()
    for chunk in chunks(sorted(annotation_ids)):
        out.update(
            session.scalars(
                select(LabelTombstone.source_id).where(
                    LabelTombstone.backend == backend,
                    LabelTombstone.project == project,
                    LabelTombstone.source_id.in_(chunk),
                )
            )
        )
    return out


def _record_deletions(
    session: Session, backend: str, project: str, deleted: dict[str, datetime], now: datetime, touched: set[int]
) -> int:
    """Tombstone each deleted annotation and mark its live labels (dimensions too) deleted; return how many."""
    ids = sorted({_annotation_id(source) for source in deleted})
    rows = [
        {"backend": backend, "project": project, "source_id": annotation, "deleted_at": _aware(when) or now}
        for annotation, when in ((a, deleted.get(a)) for a in ids)
    ]
    for chunk in chunks(rows):
        insert_ignore(session, LabelTombstone.__table__, chunk, ["backend", "project", "source_id"])
    gone: list[int] = []
    for chunk in chunks(ids, 200):  # a LIKE per id: keep the statement small
        wanted = set(chunk)
        candidates = session.execute(
            select(Label.id, Label.pair_id, Label.source_id).where(
                Label.backend == backend,
                Label.project == project,
                Label.live(),
                or_(Label.source_id.in_(chunk), *(Label.source_id.like(f"{a}:%") for a in chunk)),
            )
        )
        for row_id, pair_id, source_id in candidates:
            if _annotation_id(source_id) in wanted:
                gone.append(row_id)
                touched.add(pair_id)
    for chunk in chunks(gone):
        session.execute(update(Label).where(Label.id.in_(chunk)).values(deleted_at=now))
    return len(gone)


def _mark_deleted(
    session: Session,
    backend: str,
    project: str,
    pairs: dict[str, int],
    alive: dict[str, frozenset[str]],
    now: datetime,
    touched: set[int],
) -> int:
    """Mark live labels of the examined pairs whose source ids are gone; return how many."""
    still_there = {pairs[key]: ids for key, ids in alive.items() if key in pairs}
    gone: list[int] = []
    for chunk in chunks(sorted(still_there)):
        rows = session.execute(
            select(Label.id, Label.pair_id, Label.source_id).where(
                Label.backend == backend, Label.project == project, Label.pair_id.in_(chunk), Label.live()
            )
        )
        for row_id, pair_id, source_id in rows:
            if source_id not in still_there[pair_id]:
                gone.append(row_id)
                touched.add(pair_id)
    for chunk in chunks(gone):
        session.execute(update(Label).where(Label.id.in_(chunk)).values(deleted_at=now))
    return len(gone)


def _update_task_status(session: Session, backend: str, project: str, pair_ids: set[int], needed: int) -> None:
    """A task is 'labeled' once enough distinct annotators hold a live label on its pair."""
    for chunk in chunks(sorted(pair_ids)):
        live = dict(
            session.execute(
                select(Label.pair_id, func.count(func.distinct(Label.annotator_id)))
                .where(Label.backend == backend, Label.project == project, Label.pair_id.in_(chunk), Label.live())
                .group_by(Label.pair_id)
            ).all()
        )
        for task in session.scalars(
            select(Task).where(
                Task.backend == backend, Task.project == project, Task.pair_id.in_(chunk), Task.status != "withdrawn"
            )
        ):
            wanted = max(needed, task.labels_wanted or 0)
            task.status = "labeled" if live.get(task.pair_id, 0) >= wanted else "pending"


def get_cursor(session: Session, backend: str, project: str) -> str | None:
    return session.scalar(select(SyncCursor.cursor).where(SyncCursor.backend == backend, SyncCursor.project == project))


def set_cursor(session: Session, backend: str, project: str, cursor: str | None) -> None:
    insert_ignore(
        session,
        SyncCursor.__table__,
        [{"backend": backend, "project": project, "cursor": None, "updated_at": utcnow()}],
        ["backend", "project"],
    )
    row = session.scalars(select(SyncCursor).where(SyncCursor.backend == backend, SyncCursor.project == project)).one()
    row.cursor = cursor
    row.updated_at = utcnow()
