"""Read-side queries of the dashboard (``prefloop dashboard``): model versions, labels over time, the queue,
the pool's predictions, the loop's traces (cursors, newest rows) and who holds the sync lock. Read only."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, or_, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from prefloop.store.models import Annotator, Label, ModelVersion, Pair, Prediction, Prompt, Response, SyncCursor, Task
from prefloop.store.queries import aggregate_choice
from prefloop.store.versions import latest_model, reward_dimension

__all__ = [
    "HeldOut",
    "LockHolder",
    "QueueRow",
    "heldout_predictions",
    "label_times",
    "loop_traces",
    "model_versions",
    "pending_queue",
    "pool_predictions",
    "prediction_dimensions",
    "stale_pending_count",
    "sync_lock_holder",
]


def model_versions(session: Session) -> list[ModelVersion]:
    """Every model version, oldest first (parents loaded)."""
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.id)))


@dataclass(frozen=True)
class HeldOut:
    """A model's stored predictions on labelled held-out pairs: P(a≻b), P(tie) and the pairs' majority label."""

    p_a: list[float]
    p_tie: list[float]
    labels: list[str]


def heldout_predictions(session: Session, model: ModelVersion) -> HeldOut:
    """The model's reward predictions stored for held-out pairs (``split`` not ``pool``) that have live labels
    (``prefloop score --all`` stores them); each pair's label is ``aggregate_choice`` of its votes."""
    dimension = reward_dimension(session, model)
    votes: dict[int, list[str]] = {}
    for pair_id, choice in session.execute(
        select(Label.pair_id, Label.choice)
        .join(Pair, Pair.id == Label.pair_id)
        .where(Label.live(), Label.choice != "skip", Label.gold.is_(False), Pair.split != "pool")
    ):
        votes.setdefault(pair_id, []).append(choice)
    p_a: list[float] = []
    p_tie: list[float] = []
    labels: list[str] = []
    if not votes:
        return HeldOut(p_a, p_tie, labels)
    for pair_id, pa, pt in session.execute(
        select(Prediction.pair_id, Prediction.p_a, Prediction.p_tie)
        .where(Prediction.model_version_id == model.id, Prediction.dimension == dimension)
        .order_by(Prediction.pair_id)
    ):
        verdict = aggregate_choice(votes.get(pair_id, []))
        if verdict is not None:
            p_a.append(float(pa))
            p_tie.append(float(pt))
            labels.append(verdict)
    return HeldOut(p_a, p_tie, labels)


def label_times(session: Session) -> list[tuple[datetime, str, str]]:
    """``(when, backend, annotator)`` of every live label: when the source says it was made, else when pulled.
    The annotator is named by their name, else their external id."""
    rows = session.execute(
        select(
            func.coalesce(Label.source_created_at, Label.pulled_at),
            Label.backend,
            func.coalesce(Annotator.name, Annotator.external_id),
        )
        .join(Annotator, Annotator.id == Label.annotator_id)
        .where(Label.live())
        .order_by(Label.id)
    )
    return [(when, backend, who) for when, backend, who in rows]


@dataclass(frozen=True)
class QueueRow:
    """One pending task as the queue panel shows it."""

    backend: str
    project: str
    pair_key: str
    prompt: str
    response_a: str
    response_b: str
    strategy: str | None
    score: float | None
    model: str | None
    gold: bool
    created_at: datetime
    pushed: bool


def pending_queue(session: Session, limit: int = 50) -> tuple[int, list[QueueRow]]:
    """How many tasks are pending, and the ``limit`` with the highest strategy score (then the oldest)."""
    total = session.scalar(select(func.count(Task.id)).where(Task.status == "pending")) or 0
    ra, rb = Response.__table__.alias("ra"), Response.__table__.alias("rb")
    rows = session.execute(
        select(
            Task.backend,
            Task.project,
            Pair.key,
            Prompt.text,
            ra.c.text,
            rb.c.text,
            Task.strategy,
            Task.score,
            ModelVersion.name,
            Task.gold,
            Task.created_at,
            Task.external_id,
        )
        .join(Pair, Pair.id == Task.pair_id)
        .join(Prompt, Prompt.id == Pair.prompt_id)
        .join(ra, ra.c.id == Pair.response_a_id)
        .join(rb, rb.c.id == Pair.response_b_id)
        .outerjoin(ModelVersion, ModelVersion.id == Task.model_version_id)
        .where(Task.status == "pending")
        .order_by(Task.score.is_(None), Task.score.desc(), Task.id)
        .limit(limit)
    )
    return total, [
        QueueRow(
            backend=r[0],
            project=r[1],
            pair_key=r[2],
            prompt=r[3],
            response_a=r[4],
            response_b=r[5],
            strategy=r[6],
            score=r[7],
            model=r[8],
            gold=r[9],
            created_at=r[10],
            pushed=bool(r[11]),
        )
        for r in rows
    ]


def stale_pending_count(session: Session) -> int | None:
    """Pushed, pending, non-gold tasks without a live label that an older model chose (the rule of
    ``tasks.stale_tasks``, over every backend); None before the first model."""
    model = latest_model(session)
    if model is None:
        return None
    labeled = select(Label.pair_id).where(Label.live())
    return (
        session.scalar(
            select(func.count(Task.id)).where(
                Task.status == "pending",
                Task.external_id != "",
                Task.gold.is_(False),
                or_(Task.model_version_id.is_(None), Task.model_version_id != model.id),
                Task.pair_id.not_in(labeled),
            )
        )
        or 0
    )


def pool_predictions(session: Session, model: ModelVersion) -> list[tuple[float, float, float]]:
    """``(P(a≻b), P(tie), spread)`` of the model's reward on pool pairs nobody labelled yet."""
    dimension = reward_dimension(session, model)
    labeled = select(Label.pair_id).where(Label.live())
    rows = session.execute(
        select(Prediction.p_a, Prediction.p_tie, Prediction.spread)
        .join(Pair, Pair.id == Prediction.pair_id)
        .where(
            Prediction.model_version_id == model.id,
            Prediction.dimension == dimension,
            Pair.split == "pool",
            Prediction.pair_id.not_in(labeled),
        )
    )
    return [(float(a), float(t), float(s)) for a, t, s in rows]


def prediction_dimensions(session: Session, model: ModelVersion) -> dict[str, tuple[int, float]]:
    """Dimension → (pairs the model scored on it, mean P(a≻b)): one row per head of a multi-objective model."""
    rows = session.execute(
        select(Prediction.dimension, func.count(Prediction.id), func.avg(Prediction.p_a))
        .where(Prediction.model_version_id == model.id)
        .group_by(Prediction.dimension)
        .order_by(Prediction.dimension)
    )
    return {dim: (int(n), float(mean)) for dim, n, mean in rows}


def loop_traces(session: Session) -> dict[str, Any]:
    """What the loop leaves in the store when it runs: each backend project's pull cursor (its last pull),
    the newest label pulled, the newest task pushed and the newest model trained."""
    cursors = [
        {"backend": b, "project": p, "updated_at": at}
        for b, p, at in session.execute(
            select(SyncCursor.backend, SyncCursor.project, SyncCursor.updated_at).order_by(SyncCursor.updated_at.desc())
        )
    ]
    return {
        "cursors": cursors,
        "last_label_pulled_at": session.scalar(select(func.max(Label.pulled_at))),
        "last_task_at": session.scalar(select(func.max(Task.updated_at))),
        "last_model_at": session.scalar(select(func.max(ModelVersion.created_at))),
    }


@dataclass(frozen=True)
class LockHolder:
    """Who holds the sync lock: ``held`` None where this platform cannot tell."""

    held: bool | None
    holder: str | None
    where: str


def sync_lock_holder(engine: Engine) -> LockHolder:
    """Who holds ``store.db.sync_lock``, looked up without taking it (taking it, even for an instant, could
    make a starting sync exit 'lock held'): PostgreSQL's ``pg_locks``; beside a SQLite file, Linux's
    ``/proc/locks`` for the lock file's inode."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        with engine.connect() as conn:
            pid = conn.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND objid = (hashtext('prefloop-sync')::bigint & 4294967295)::oid LIMIT 1"
                )
            ).scalar()
        return LockHolder(pid is not None, f"PostgreSQL backend pid {pid}" if pid is not None else None, "pg_locks")
    database = make_url(str(url)).database or "prefloop"
    path = Path(f"{database}.sync.lock" if database != ":memory:" else "prefloop-memory.sync.lock")
    try:
        inode = os.stat(path).st_ino
    except OSError:
        return LockHolder(False, None, str(path))  # no lock file: no sync ever ran here, or it was cleaned
    try:
        locks = Path("/proc/locks").read_text()
    except OSError:
        return LockHolder(None, None, str(path))
    for line in locks.splitlines():
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF" (a blocked waiter's line has "->")
        if len(parts) >= 6 and "->" not in parts and parts[4].isdigit():
            device_inode = parts[5].split(":")
            if len(device_inode) == 3 and device_inode[2].isdigit() and int(device_inode[2]) == inode:
                return LockHolder(True, f"pid {parts[4]}", str(path))
    return LockHolder(False, None, str(path))
