"""Tasks: which pairs sit in front of annotators, where, shown in which order and why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from prefloop.store.models import Label, Pair, Task, utcnow
from prefloop.store.pairs import pairs_by_keys
from prefloop.types import PushedTask

__all__ = [
    "TaskMeta",
    "acquired_pair_ids",
    "count_pending",
    "excluded_pair_ids",
    "last_task_id",
    "pending_by_backend",
    "plan_tasks",
    "planned_tasks",
    "pool_candidates",
    "record_tasks",
    "selectable_count",
    "settle_refresh",
    "stale_tasks",
]


@dataclass(frozen=True)
class TaskMeta:
    """Why a pair was pushed: the acquisition strategy, its parameters, score and model version."""

    strategy: str | None = None
    params: Mapping[str, Any] | None = None
    score: float | None = None
    model_version_id: int | None = None
    gold: bool = False  # a known-answer check (stored only; the backend shows it like any task)


def record_tasks(
    session: Session, backend: str, pushed: Sequence[PushedTask], meta: Mapping[str, TaskMeta] | None = None
) -> int:
    """Upsert tasks that are live at the backend; return how many were new to the store.

    Used both after a push and to reconcile with ``live_tasks()`` after a crash, so
    a task the server has but the store missed is recorded exactly once.
    """
    meta = meta or {}
    pairs = pairs_by_keys(session, [t.pair_key for t in pushed])
    added = 0
    for item in pushed:
        pair = pairs.get(item.pair_key)
        if pair is None:
            continue
        task = session.scalar(
            select(Task).where(Task.backend == backend, Task.project == item.project, Task.pair_id == pair.id)
        )
        why = meta.get(item.pair_key)
        if task is None:
            task = Task(
                pair_id=pair.id,
                backend=backend,
                project=item.project,
                external_id=item.external_id,
                swapped=item.swapped,
                status="pending",
            )
            session.add(task)
            added += 1
        elif task.status == "withdrawn":
            task.status = "pending"
        task.external_id = item.external_id
        task.swapped = item.swapped
        if why is not None:
            task.strategy = why.strategy
            task.strategy_params = dict(why.params or {})
            task.score = why.score
            task.model_version_id = why.model_version_id
            task.gold = why.gold
        task.updated_at = utcnow()
    session.flush()
    return added


def count_pending(session: Session, backend: str, project: str) -> int:
    return (
        session.scalar(
            select(func.count(Task.id)).where(
                Task.backend == backend, Task.project == project, Task.status == "pending"
            )
        )
        or 0
    )


def excluded_pair_ids(session: Session) -> set[int]:
    """Pairs that must not be selected again: labeled anywhere, or pending in any backend, or held out."""
    held_out = session.scalars(select(Pair.id).where(Pair.split != "pool"))
    return _labeled_or_pending(session) | set(held_out)


def _labeled_or_pending(session: Session) -> set[int]:
    labeled = session.scalars(select(Label.pair_id).where(Label.live()).distinct())
    pending = session.scalars(select(Task.pair_id).where(Task.status != "withdrawn").distinct())
    return set(labeled) | set(pending)


def acquired_pair_ids(session: Session, include: Iterable[int] = (), skip: Iterable[int] = ()) -> list[int]:
    """Pool pairs already in, or on their way into, the training set: labeled, or pending in a backend.

    ``include`` (pending tasks being re-ranked: candidates again) and ``skip`` (withdrawn in this
    cycle) are left out. BAL-PM spreads a new batch away from these.
    """
    pool = set(session.scalars(select(Pair.id).where(Pair.split == "pool")))
    return sorted((_labeled_or_pending(session) & pool) - set(include) - set(skip))


def selectable_count(session: Session) -> int:
    """How many pool pairs acquisition may still choose (none of ``excluded_pair_ids``)."""
    pool = set(session.scalars(select(Pair.id).where(Pair.split == "pool")))
    return len(pool - excluded_pair_ids(session))


def last_task_id(session: Session) -> int:
    """The newest task's id (0 before any): seeds the random choices of a top-up."""
    return session.scalar(select(Task.id).order_by(Task.id.desc()).limit(1)) or 0


def planned_tasks(session: Session, backend: str, project: str) -> list[Task]:
    """Tasks planned in the store and not yet confirmed by the backend (a run died mid-push, or this one planned
    them): pending with no external id."""
    return list(
        session.scalars(
            select(Task).where(
                Task.backend == backend, Task.project == project, Task.external_id == "", Task.status == "pending"
            )
        )
    )


def pool_candidates(session: Session, include: Iterable[int] = (), skip: Iterable[int] = ()) -> list[tuple[int, int]]:
    """``(pair id, prompt id)`` of pool pairs acquisition may choose, by id: not ``excluded_pair_ids``, except
    ``include`` (pending tasks being re-ranked), and never ``skip`` (withdrawn in this cycle)."""
    excluded = (excluded_pair_ids(session) - set(include)) | set(skip)
    rows = session.execute(select(Pair.id, Pair.prompt_id).where(Pair.split == "pool").order_by(Pair.id)).all()
    return [(pair_id, prompt_id) for pair_id, prompt_id in rows if pair_id not in excluded]


def plan_tasks(
    session: Session,
    backend: str,
    project: str,
    picks: Sequence[tuple[int, float, bool]],
    *,
    strategy: str,
    params: dict[str, Any],
    model_version_id: int | None,
) -> None:
    """Record ``(pair id, score, gold)`` picks as planned tasks (external id '' until the push is confirmed).

    One row per pair and project: a withdrawn pair's row is reused when it is chosen again.
    """
    existing = {
        t.pair_id: t
        for t in session.scalars(
            select(Task).where(
                Task.backend == backend, Task.project == project, Task.pair_id.in_([p for p, _, _ in picks])
            )
        )
    }
    for pair_id, score, gold in picks:
        task = existing.get(pair_id)
        if task is None:
            task = Task(pair_id=pair_id, backend=backend, project=project)
            session.add(task)
        task.external_id, task.status, task.strategy, task.strategy_params = "", "pending", strategy, params
        task.score, task.model_version_id, task.gold = float(score), model_version_id, gold


def stale_tasks(session: Session, backend: str, project: str, model_version_id: int) -> dict[int, str]:
    """Pushed, pending, non-gold tasks without a live label that another model chose: pair id → pair key."""
    rows = dict(
        session.execute(
            select(Task.pair_id, Pair.key)
            .join(Pair, Pair.id == Task.pair_id)
            .where(
                Task.backend == backend,
                Task.project == project,
                Task.status == "pending",
                Task.external_id != "",
                Task.gold.is_(False),
                or_(Task.model_version_id.is_(None), Task.model_version_id != model_version_id),
            )
        ).all()
    )
    labeled = set(session.scalars(select(Label.pair_id).where(Label.pair_id.in_(rows), Label.live())))
    return {pair_id: key for pair_id, key in rows.items() if pair_id not in labeled}


def settle_refresh(
    session: Session,
    backend: str,
    project: str,
    keep: dict[int, float],
    gone: set[int],
    *,
    model_version_id: int,
    strategy: str,
    params: dict[str, Any],
) -> None:
    """After a refresh: tasks in ``gone`` are withdrawn; those kept now stand on the new model with its score."""
    for task in session.scalars(
        select(Task).where(Task.backend == backend, Task.project == project, Task.pair_id.in_(set(keep) | gone))
    ):
        if task.pair_id in gone:
            task.status = "withdrawn"
        else:
            task.model_version_id, task.score, task.strategy, task.strategy_params = (
                model_version_id,
                keep[task.pair_id],
                strategy,
                params,
            )


def pending_by_backend(session: Session) -> dict[str, int]:
    """Pending tasks per backend."""
    return dict(
        session.execute(
            select(Task.backend, func.count(Task.id)).where(Task.status == "pending").group_by(Task.backend)
        ).all()
    )
