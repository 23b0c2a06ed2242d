"""Read-side queries shared by export, training, evaluation and status."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from prefloop.store.models import Annotator, Label, ModelVersion, Pair, Prompt, Response, Task

__all__ = [
    "LabeledRow",
    "aggregate_choice",
    "iter_labeled_rows",
    "label_dimensions",
    "labels_by_annotator",
    "live_label_counts",
    "overall_votes",
    "pair_texts",
    "pairs_by_id",
    "pool_label_counts",
    "pool_pair_ids",
    "response_lengths",
    "store_stats",
    "votes_by_annotator",
]


@dataclass(frozen=True)
class LabeledRow:
    """A current, live label joined with its pair's texts (canonical orientation)."""

    label_id: int
    pair_id: int
    pair_key: str
    split: str
    prompt: str
    response_a: str
    response_b: str
    choice: str
    strength: float | None
    dimension: str
    annotator: str
    backend: str
    rationale: str | None
    created_at: str | None


def iter_labeled_rows(
    session: Session,
    dimension: str | None = "overall",
    split: str | None = None,
    include_skips: bool = False,
    max_label_id: int | None = None,
    include_gold: bool = False,
) -> Iterator[LabeledRow]:
    """Current, non-deleted labels with texts, ordered by pair then label id; streamed.

    Labels given on gold tasks (known-answer checks) are left out unless ``include_gold``.
    """
    ra, rb = Response.__table__.alias("ra"), Response.__table__.alias("rb")
    query = (
        select(
            Label.id,
            Pair.id,
            Pair.key,
            Pair.split,
            Prompt.text,
            ra.c.text,
            rb.c.text,
            Label.choice,
            Label.strength,
            Label.dimension,
            Annotator.external_id,
            Label.backend,
            Label.rationale,
            Label.source_created_at,
        )
        .join(Pair, Label.pair_id == Pair.id)
        .join(Prompt, Pair.prompt_id == Prompt.id)
        .join(ra, Pair.response_a_id == ra.c.id)
        .join(rb, Pair.response_b_id == rb.c.id)
        .join(Annotator, Label.annotator_id == Annotator.id)
        .where(Label.live())
        .order_by(Pair.id, Label.id)
    )
    if dimension is not None:
        query = query.where(Label.dimension == dimension)
    if split is not None:
        query = query.where(Pair.split == split)
    if not include_skips:
        query = query.where(Label.choice != "skip")
    if max_label_id is not None:
        query = query.where(Label.id <= max_label_id)
    if not include_gold:
        query = query.where(Label.gold.is_(False))
    for row in session.execute(query.execution_options(yield_per=2000)):
        created = row[13].isoformat() if row[13] is not None else None
        yield LabeledRow(*row[:13], created)  # type: ignore[call-arg]  # mypy cannot count a Row slice


def aggregate_choice(choices: list[str]) -> str | None:
    """One verdict per pair from several labels (skips ignored).

    Rule: the choice with the most votes wins; a tie between 'a' and 'b' for the
    most votes is a DISAGREEMENT and yields None (excluded from preference data);
    'tie' wins only with strictly more votes than each of 'a' and 'b'.
    """
    votes = Counter(c for c in choices if c != "skip")
    if not votes:
        return None
    top = max(votes.values())
    leaders = sorted(c for c, n in votes.items() if n == top)
    if len(leaders) == 1:
        return leaders[0]
    return None


def live_label_counts(session: Session, column: Any) -> dict[Any, int]:
    """Current, undeleted labels counted by ``column`` (e.g. ``Label.backend``)."""
    return dict(session.execute(select(column, func.count(Label.id)).where(Label.live()).group_by(column)).all())


def label_dimensions(session: Session) -> list[str]:
    """Dimensions that have live labels, sorted."""
    return sorted(live_label_counts(session, Label.dimension))


def store_stats(session: Session) -> dict[str, object]:
    """Counts for ``prefloop stats``: pairs, labels by choice / dimension / backend, annotators, tasks."""
    by_choice = live_label_counts(session, Label.choice)
    by_dimension = live_label_counts(session, Label.dimension)
    by_backend = live_label_counts(session, Label.backend)
    tasks = dict(session.execute(select(Task.status, func.count()).group_by(Task.status)).all())
    return {
        "pairs": session.scalar(select(func.count(Pair.id))) or 0,
        "pairs_by_split": dict(session.execute(select(Pair.split, func.count()).group_by(Pair.split)).all()),
        "prompts": session.scalar(select(func.count(Prompt.id))) or 0,
        "responses": session.scalar(select(func.count(Response.id))) or 0,
        "labeled_pairs": session.scalar(
            select(func.count(func.distinct(Label.pair_id))).where(Label.live(), Label.choice != "skip")
        )
        or 0,
        "labels": sum(by_choice.values()),
        "labels_by_choice": {c: by_choice.get(c, 0) for c in ("a", "b", "tie", "skip")},
        "labels_by_dimension": by_dimension,
        "labels_by_backend": by_backend,
        "superseded_labels": session.scalar(select(func.count(Label.id)).where(Label.is_current.is_(False))) or 0,
        "deleted_labels": session.scalar(select(func.count(Label.id)).where(Label.deleted_at.is_not(None))) or 0,
        "annotators": session.scalar(select(func.count(Annotator.id))) or 0,
        "tasks_by_status": tasks,
        "pending_tasks": tasks.get("pending", 0),
        "model_versions": session.scalar(select(func.count(ModelVersion.id))) or 0,
    }


def pairs_by_id(session: Session, pair_ids: Sequence[int]) -> dict[int, Pair]:
    """Pairs with their prompt and responses loaded, by id."""
    return {p.id: p for p in session.scalars(select(Pair).where(Pair.id.in_(list(pair_ids)))).unique()}


def pair_texts(session: Session, pair_ids: Sequence[int]) -> list[tuple[str, str, str]]:
    """``(prompt, response a, response b)`` of each pair, in the order given."""
    pairs = pairs_by_id(session, pair_ids)
    return [(pairs[i].prompt.text, pairs[i].response_a.text, pairs[i].response_b.text) for i in pair_ids]


def response_lengths(session: Session, pair_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Pair id → the characters of its response a and response b (canonical orientation), counted in SQL."""
    resp_a, resp_b = aliased(Response), aliased(Response)
    ids = list(pair_ids)
    out: dict[int, tuple[int, int]] = {}
    for start in range(0, len(ids), 500):  # SQLite caps the bound parameters of one statement
        rows = session.execute(
            select(Pair.id, func.length(resp_a.text), func.length(resp_b.text))
            .join(resp_a, resp_a.id == Pair.response_a_id)
            .join(resp_b, resp_b.id == Pair.response_b_id)
            .where(Pair.id.in_(ids[start : start + 500]))
        )
        out.update({pair_id: (int(len_a), int(len_b)) for pair_id, len_a, len_b in rows})
    return out


def labels_by_annotator(session: Session) -> list[dict[str, Any]]:
    """Live labels per annotator: backend, annotator (name, else external id) and count."""
    return [
        {"backend": backend, "annotator": name or ext, "labels": n}
        for backend, ext, name, n in session.execute(
            select(Annotator.backend, Annotator.external_id, Annotator.name, func.count(Label.id))
            .join(Label, Label.annotator_id == Annotator.id)
            .where(Label.live())
            .group_by(Annotator.backend, Annotator.external_id, Annotator.name)
            .order_by(Annotator.backend, Annotator.external_id)
        )
    ]


def overall_votes(session: Session) -> dict[int, list[str]]:
    """Pair id → the choices of its live, non-skip labels on the overall dimension (for agreement)."""
    votes: dict[int, list[str]] = defaultdict(list)
    for pair_id, choice in session.execute(
        select(Label.pair_id, Label.choice).where(Label.live(), Label.choice != "skip", Label.dimension == "overall")
    ):
        votes[pair_id].append(choice)
    return dict(votes)


def votes_by_annotator(session: Session) -> dict[int, dict[str, str]]:
    """Pair id → {annotator external id: choice} of its live, non-skip labels on the overall dimension."""
    votes: dict[int, dict[str, str]] = defaultdict(dict)
    for pair_id, who, choice in session.execute(
        select(Label.pair_id, Annotator.external_id, Label.choice)
        .join(Annotator, Label.annotator_id == Annotator.id)
        .where(Label.live(), Label.choice != "skip", Label.dimension == "overall")
        .order_by(Label.id)
    ):
        votes[pair_id][who] = choice
    return dict(votes)


def pool_label_counts(session: Session) -> tuple[int, int]:
    """(live non-skip labels on pool pairs, the pool pairs they cover): held-out pairs' labels left out."""
    labels, pairs = session.execute(
        select(func.count(Label.id), func.count(func.distinct(Label.pair_id)))
        .join(Pair, Pair.id == Label.pair_id)
        .where(Label.live(), Label.choice != "skip", Pair.split == "pool")
    ).one()
    return int(labels), int(pairs)


def pool_pair_ids(session: Session, all_pairs: bool = False) -> list[int]:
    """Ids of pool pairs (or of every pair), in id order."""
    query = select(Pair.id) if all_pairs else select(Pair.id).where(Pair.split == "pool")
    return list(session.scalars(query.order_by(Pair.id)))
