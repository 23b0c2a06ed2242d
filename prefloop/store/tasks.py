"""Tasks: which pairs sit in front of annotators, where, shown in which order and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from prefloop.store.models import Label, Pair, Task, utcnow
from prefloop.store.pairs import pairs_by_keys
from prefloop.types import PushedTask

__all__ = ["TaskMeta", "count_pending", "excluded_pair_ids", "record_tasks", "selectable_count", "tasks_for"]


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
        task = session.scalar(select(Task).where(
            Task.backend == backend, Task.project == item.project, Task.pair_id == pair.id))
        why = meta.get(item.pair_key)
        if task is None:
            task = Task(pair_id=pair.id, backend=backend, project=item.project, external_id=item.external_id,
                        swapped=item.swapped, status="pending")
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


def tasks_for(session: Session, backend: str, project: str, status: str | None = None) -> list[Task]:
    query = select(Task).where(Task.backend == backend, Task.project == project)
    if status:
        query = query.where(Task.status == status)
    return list(session.scalars(query.order_by(Task.id)))


def count_pending(session: Session, backend: str, project: str) -> int:
    return session.scalar(select(func.count(Task.id)).where(
        Task.backend == backend, Task.project == project, Task.status == "pending")) or 0


def excluded_pair_ids(session: Session) -> set[int]:
    """Pairs that must not be selected again: labeled anywhere, or pending in any backend, or held out."""
    labeled = session.scalars(select(Label.pair_id).where(
        Label.live()).distinct())
    pending = session.scalars(select(Task.pair_id).where(Task.status != "withdrawn").distinct())
    held_out = session.scalars(select(Pair.id).where(Pair.split != "pool"))
    return set(labeled) | set(pending) | set(held_out)


def selectable_count(session: Session) -> int:
    """How many pool pairs acquisition may still choose (none of ``excluded_pair_ids``)."""
    pool = set(session.scalars(select(Pair.id).where(Pair.split == "pool")))
    return len(pool - excluded_pair_ids(session))
