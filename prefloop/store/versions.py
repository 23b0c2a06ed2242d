"""Model versions (with lineage and label snapshots) and their predictions."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from prefloop.errors import StoreError
from prefloop.store.models import Label, ModelVersion, Pair, Prediction, utcnow
from prefloop.store.pairs import insert_ignore

__all__ = [
    "find_model",
    "guesses_for",
    "label_snapshot",
    "labels_since",
    "latest_model",
    "milestone_due",
    "model_audit",
    "model_dimensions",
    "model_names",
    "model_summaries",
    "predictions_by_pair",
    "predictions_for",
    "record_audit",
    "record_model_version",
    "reward_dimension",
    "save_predictions",
    "unscored_pair_ids",
]


def label_snapshot(session: Session) -> dict[str, Any]:
    """Which labels exist now: newest label id and count of live, non-skip, non-gold pool labels."""
    live = (Label.live(), Label.choice != "skip", Label.gold.is_(False))
    return {
        "max_label_id": session.scalar(select(func.max(Label.id))) or 0,
        "n_labels": session.scalar(
            select(func.count(Label.id)).join(Pair, Label.pair_id == Pair.id).where(*live, Pair.split == "pool")
        )
        or 0,
    }


def labels_since(session: Session, model: ModelVersion | None) -> int:
    """Live, non-skip pool labels added (or edited) after ``model`` was trained (gold checks do not count)."""
    query = (
        select(func.count(Label.id))
        .join(Pair, Label.pair_id == Pair.id)
        .where(Label.live(), Label.choice != "skip", Label.gold.is_(False), Pair.split == "pool")
    )
    if model is not None:
        query = query.where(Label.id > int(model.label_snapshot.get("max_label_id", 0)))
    return session.scalar(query) or 0


class Milestone(NamedTuple):
    """Whether a retrain is due: ``due``, the newest model's name, labels since it, labels needed."""

    due: bool
    model: str | None
    since: int
    needed: int


def milestone_due(session: Session, *, every: int, min_labels: int, min_interval_s: float = 0.0) -> Milestone:
    """The first model needs ``min_labels`` labels; each later one ``every`` new labels and
    ``min_interval_s`` seconds since the last."""
    model = latest_model(session)
    since = labels_since(session, model)
    if model is None:
        return Milestone(since >= min_labels, None, since, min_labels)
    created = model.created_at if model.created_at.tzinfo else model.created_at.replace(tzinfo=UTC)
    old_enough = time.time() - created.timestamp() >= min_interval_s
    return Milestone(since >= every and old_enough, model.name, since, every)


def latest_model(session: Session) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc()).limit(1)).first()


def find_model(session: Session, name: str | None) -> ModelVersion | None:
    """A model version by name (or id), or the newest when ``name`` is None."""
    if name is None:
        return latest_model(session)
    row = session.scalar(select(ModelVersion).where(ModelVersion.name == name))
    if row is None and name.isdigit():
        row = session.get(ModelVersion, int(name))
    return row


def record_model_version(
    session: Session,
    *,
    name: str,
    parent_id: int | None,
    base_model: str,
    mode: str,
    config: dict[str, Any],
    artifact_path: str,
    snapshot: dict[str, Any],
    metrics: dict[str, Any],
) -> ModelVersion:
    """Insert a model version; the same weights (same name) recorded twice stay one row."""
    existing = session.scalar(select(ModelVersion).where(ModelVersion.name == name))
    if existing is not None:
        return existing
    row = ModelVersion(
        name=name,
        parent_id=parent_id,
        base_model=base_model,
        mode=mode,
        config=config,
        artifact_path=artifact_path,
        label_snapshot=snapshot,
        metrics=metrics,
    )
    session.add(row)
    session.flush()
    return row


def record_audit(session: Session, name: str, audit: dict[str, Any]) -> None:
    """Store an audit (``prefloop audit``'s JSON object) with model version ``name``, under ``metrics["audit"]``."""
    row = find_model(session, name)
    if row is None:
        raise StoreError(f"no model version {name} to store an audit with; `prefloop status` lists the versions")
    row.metrics = {**(row.metrics or {}), "audit": audit}  # a new dict: the JSON column sees the change


def model_audit(session: Session, name: str | None) -> dict[str, Any] | None:
    """The audit stored with model version ``name`` (default: the newest), or None."""
    row = find_model(session, name)
    return None if row is None else (row.metrics or {}).get("audit")


COMBINED = "combined"  # the prediction dimension of the combined reward of a multi-objective model


def model_dimensions(model: ModelVersion) -> list[str]:
    """The dimensions a model version was trained on, in its order (models before #14: overall)."""
    return list(model.config.get("dimensions") or ["overall"])


def reward_dimension(session: Session, model: ModelVersion) -> str:
    """The dimension whose predictions are "the reward" of a model: the combined reward where
    ``score`` stored one (``[objectives]`` configured), else the model's first dimension."""
    has_combined = session.scalar(
        select(Prediction.id).where(Prediction.model_version_id == model.id, Prediction.dimension == COMBINED).limit(1)
    )
    return COMBINED if has_combined is not None else model_dimensions(model)[0]


def save_predictions(
    session: Session,
    model_id: int,
    pair_ids: Sequence[int],
    p_a: Iterable[float],
    p_tie: Iterable[float],
    spread: Iterable[float],
    members: Iterable[Iterable[float]],
    dimension: str = "overall",
) -> None:
    """Store one dimension's predictions; a (model, pair, dimension) already stored is kept."""
    now = utcnow()
    rows = [
        {
            "model_version_id": model_id,
            "pair_id": int(pid),
            "dimension": dimension,
            "p_a": float(pa),
            "p_tie": float(pt),
            "spread": float(sp),
            "members": [float(m) for m in mem],
            "created_at": now,
        }
        for pid, pa, pt, sp, mem in zip(pair_ids, p_a, p_tie, spread, members, strict=True)
    ]
    insert_ignore(session, Prediction.__table__, rows, ["model_version_id", "pair_id", "dimension"])


def unscored_pair_ids(
    session: Session, model_id: int, pair_ids: Sequence[int], dimensions: Sequence[str] | None = None
) -> list[int]:
    """The pairs lacking a prediction of the model on any of ``dimensions`` (None: on any dimension at all)."""
    query = select(Prediction.pair_id, Prediction.dimension).where(Prediction.model_version_id == model_id)
    have: dict[int, set[str]] = {}
    for pair_id, dim in session.execute(query):
        have.setdefault(pair_id, set()).add(dim)
    if dimensions is None:
        return [p for p in pair_ids if p not in have]
    wanted = set(dimensions)
    return [p for p in pair_ids if not wanted <= have.get(p, set())]


def predictions_for(
    session: Session, model_id: int, pair_ids: Sequence[int], dimension: str | None = None
) -> dict[int, Prediction]:
    """Pair id → the model's prediction on ``dimension`` (None: the model's reward, ``reward_dimension``)."""
    if dimension is None:
        model = session.get(ModelVersion, model_id)
        dimension = reward_dimension(session, model) if model is not None else "overall"
    out: dict[int, Prediction] = {}
    ids = list(pair_ids)
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        out.update(
            {
                p.pair_id: p
                for p in session.scalars(
                    select(Prediction).where(
                        Prediction.model_version_id == model_id,
                        Prediction.pair_id.in_(chunk),
                        Prediction.dimension == dimension,
                    )
                )
            }
        )
    return out


def predictions_by_pair(
    session: Session, model_id: int, dimensions: Sequence[str] | None = None
) -> dict[int, dict[str, Prediction]]:
    """Pair id → dimension → the model's stored prediction (every dimension, or those named)."""
    query = select(Prediction).where(Prediction.model_version_id == model_id).order_by(Prediction.pair_id)
    if dimensions is not None:
        query = query.where(Prediction.dimension.in_(list(dimensions)))
    out: dict[int, dict[str, Prediction]] = {}
    for p in session.scalars(query):
        out.setdefault(p.pair_id, {})[p.dimension] = p
    return out


def model_names(session: Session) -> dict[int, str]:
    """Model version id → name."""
    return dict(session.execute(select(ModelVersion.id, ModelVersion.name)).all())


def guesses_for(session: Session, pair_ids: Sequence[int]) -> dict[tuple[int, int], float]:
    """``(model version id, pair id)`` → that model's P(a≻b) on its reward (``reward_dimension``)."""
    out: dict[tuple[int, int], float] = {}
    reward: dict[int, str] = {}
    for model_id, pair_id, dim, p_a in session.execute(
        select(Prediction.model_version_id, Prediction.pair_id, Prediction.dimension, Prediction.p_a).where(
            Prediction.pair_id.in_(list(pair_ids))
        )
    ):
        if model_id not in reward:
            model = session.get(ModelVersion, model_id)
            reward[model_id] = reward_dimension(session, model) if model is not None else "overall"
        if dim == reward[model_id]:
            out[(model_id, pair_id)] = p_a
    return out


def model_summaries(session: Session) -> list[dict[str, Any]]:
    """Every model version, oldest first: name, parent, mode, creation time, labels and main metrics."""
    return [
        {
            "name": m.name,
            "parent": m.parent.name if m.parent else None,
            "mode": m.mode,
            "created_at": m.created_at,
            "labels": m.label_snapshot.get("n_labels"),
            "metrics": {
                k: m.metrics.get(k) for k in ("val_loss", "train_loss", "n_pairs", "seconds") if k in m.metrics
            },
        }
        for m in session.scalars(select(ModelVersion).order_by(ModelVersion.id))
    ]
