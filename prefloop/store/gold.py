"""Gold checks in the store: known answers, which pairs can still be shown as checks, gold labels.

A gold task is an ordinary task at the backend (the backend is never told), marked ``gold`` in
the store. A label given on it is marked ``gold`` when it is pulled: it scores the annotator
and never counts as a training label, toward a milestone or in an export.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from prefloop.store.models import Annotator, GoldAnswer, Label, Task, utcnow
from prefloop.store.pairs import chunks, insert_ignore

__all__ = [
    "add_gold_answers",
    "gold_accuracy",
    "gold_answers",
    "gold_candidates",
    "mark_gold_labels",
    "unanimous_pairs",
]


def add_gold_answers(session: Session, answers: Mapping[int, str], source: str) -> int:
    """Record known answers (pair id → 'a' | 'b' | 'tie'); a pair that has one keeps it. Returns how many are new."""
    before = set(session.scalars(select(GoldAnswer.pair_id).where(GoldAnswer.pair_id.in_(list(answers)))))
    now = utcnow()
    insert_ignore(
        session,
        GoldAnswer.__table__,
        [
            {"pair_id": pair_id, "answer": answer, "source": source, "created_at": now}
            for pair_id, answer in answers.items()
        ],
        ["pair_id"],
    )
    return len(set(answers) - before)


def gold_answers(session: Session) -> dict[int, str]:
    """Every known answer: pair id → answer."""
    return dict(session.execute(select(GoldAnswer.pair_id, GoldAnswer.answer)).all())


def gold_candidates(session: Session, backend: str, project: str) -> list[int]:
    """Gold pairs never put in front of this project's annotators yet (ordered by pair id)."""
    shown = set(session.scalars(select(Task.pair_id).where(Task.backend == backend, Task.project == project)))
    labeled = set(session.scalars(select(Label.pair_id).where(Label.backend == backend, Label.project == project)))
    return [
        p
        for p in session.scalars(select(GoldAnswer.pair_id).order_by(GoldAnswer.pair_id))
        if p not in shown and p not in labeled
    ]


def unanimous_pairs(
    session: Session, min_labels: int, annotators: Collection[int] | None = None, dimension: str = "overall"
) -> dict[int, str]:
    """Pairs whose live, non-gold, non-skip labels are at least ``min_labels``, all from ``annotators``
    (ids; None = anyone) and all the same choice: pair id → that choice."""
    votes: dict[int, list[tuple[int, str]]] = {}
    for pair_id, annotator, choice in session.execute(
        select(Label.pair_id, Label.annotator_id, Label.choice).where(
            Label.live(), Label.gold.is_(False), Label.choice != "skip", Label.dimension == dimension
        )
    ):
        votes.setdefault(pair_id, []).append((annotator, choice))
    out = {}
    for pair_id, given in votes.items():
        choices = {c for _, c in given}
        if (
            len(given) >= min_labels
            and len(choices) == 1
            and (annotators is None or all(a in annotators for a, _ in given))
        ):
            out[pair_id] = choices.pop()
    return out


def mark_gold_labels(session: Session, backend: str, project: str, pair_ids: Iterable[int]) -> int:
    """Mark the labels of this project on its gold tasks (among ``pair_ids``) as gold; return how many."""
    marked = 0
    for chunk in chunks(sorted(set(pair_ids))):
        gold = list(
            session.scalars(
                select(Task.pair_id).where(
                    Task.backend == backend, Task.project == project, Task.gold.is_(True), Task.pair_id.in_(chunk)
                )
            )
        )
        if gold:
            result = session.execute(
                update(Label)
                .where(
                    Label.backend == backend, Label.project == project, Label.pair_id.in_(gold), Label.gold.is_(False)
                )
                .values(gold=True)
            )
            marked += cast(CursorResult[Any], result).rowcount or 0  # an UPDATE's result is a CursorResult
    return marked


def gold_accuracy(session: Session) -> dict[tuple[str, str], tuple[int, int]]:
    """(backend, annotator external id) → (gold labels given, how many were right); skips left out."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    rows = session.execute(
        select(Annotator.backend, Annotator.external_id, Label.choice, GoldAnswer.answer)
        .join(Annotator, Label.annotator_id == Annotator.id)
        .join(GoldAnswer, GoldAnswer.pair_id == Label.pair_id)
        .where(Label.live(), Label.gold.is_(True), Label.choice != "skip")
    )
    for backend, external_id, choice, answer in rows:
        n, right = out.get((backend, external_id), (0, 0))
        out[(backend, external_id)] = (n + 1, right + (choice == answer))
    return out
