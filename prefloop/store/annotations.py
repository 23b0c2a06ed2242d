"""Read side for annotator quality: every current label with who gave it, how it was shown and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from prefloop.store.models import Annotator, GoldAnswer, Label, Pair, Task
from prefloop.store.pairs import chunks
from prefloop.store.versions import guesses_for

__all__ = ["AnnotationRow", "TaskVotes", "annotation_rows", "ask_for_labels", "labeled_task_votes"]


@dataclass(frozen=True)
class AnnotationRow:
    """A live label (skips included) with its annotator and the task it answered, if any.

    ``swapped`` is the task's presentation order (True: response B was shown first); None
    for labels without a task (ingested files). ``lead_time`` is the seconds the backend
    measured (Label Studio keeps it in the raw annotation).
    """

    label_id: int
    pair_id: int
    annotator_id: int
    backend: str
    external_id: str
    name: str | None
    choice: str
    swapped: bool | None
    lead_time: float | None
    created_at: datetime | None
    gold: str | None = None  # the known answer, for a label given on a gold task


def annotation_rows(session: Session, dimension: str = "overall") -> list[AnnotationRow]:
    """Every live label of ``dimension`` (skips included, gold checks marked), ordered by label id."""
    task = and_(Task.backend == Label.backend, Task.project == Label.project, Task.pair_id == Label.pair_id)
    query = (
        select(
            Label.id,
            Label.pair_id,
            Label.annotator_id,
            Annotator.backend,
            Annotator.external_id,
            Annotator.name,
            Label.choice,
            Task.swapped,
            Label.raw,
            Label.source_created_at,
            Label.gold,
            GoldAnswer.answer,
        )
        .join(Annotator, Label.annotator_id == Annotator.id)
        .outerjoin(Task, task)
        .outerjoin(GoldAnswer, GoldAnswer.pair_id == Label.pair_id)
        .where(Label.live(), Label.dimension == dimension)
        .order_by(Label.id)
    )
    out = []
    for row in session.execute(query):
        raw = row[8] or {}
        lead = raw.get("lead_time") if isinstance(raw, dict) else None
        out.append(
            AnnotationRow(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                None if row[7] is None else bool(row[7]),
                float(lead) if isinstance(lead, int | float) else None,
                row[9],
                row[11] if row[10] else None,
            )
        )
    return out


@dataclass(frozen=True)
class TaskVotes:
    """A labeled, ordinary task of one project, its labels so far and the model's newest guess."""

    pair_id: int
    pair_key: str
    votes: list[str]
    p_a: float | None


def labeled_task_votes(session: Session, backend: str, project: str) -> list[TaskVotes]:
    """Tasks marked labeled (not gold) with the choices of their live labels (skips left out)."""
    tasks = dict(
        session.execute(
            select(Task.pair_id, Pair.key)
            .join(Pair, Pair.id == Task.pair_id)
            .where(Task.backend == backend, Task.project == project, Task.status == "labeled", Task.gold.is_(False))
        ).all()
    )
    votes: dict[int, list[str]] = {p: [] for p in tasks}
    guesses: dict[int, float] = {}
    for chunk in chunks(sorted(tasks)):
        for pair_id, choice in session.execute(
            select(Label.pair_id, Label.choice).where(
                Label.backend == backend,
                Label.project == project,
                Label.pair_id.in_(chunk),
                Label.live(),
                Label.gold.is_(False),
                Label.choice != "skip",
                Label.dimension == "overall",
            )
        ):
            votes[pair_id].append(choice)
        for (_, pair_id), p_a in sorted(guesses_for(session, chunk).items()):
            guesses[pair_id] = p_a  # the newest model's guess (on its reward dimension) wins
    return [TaskVotes(p, tasks[p], votes[p], guesses.get(p)) for p in sorted(tasks) if votes[p]]


def ask_for_labels(session: Session, backend: str, project: str, wanted: dict[int, int]) -> None:
    """Record that these tasks (pair id → labels wanted) are open again for more labels."""
    for task in session.scalars(
        select(Task).where(Task.backend == backend, Task.project == project, Task.pair_id.in_(list(wanted)))
    ):
        task.labels_wanted = wanted[task.pair_id]
        task.status = "pending"
