"""``prefloop status``: where the loop stands, from the store alone (no backend call)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from prefloop.annotators.agreement import agreement_report
from prefloop.config import LoopConfig
from prefloop.store.models import Annotator, Label, ModelVersion, Task
from prefloop.store.queries import live_label_counts
from prefloop.store.versions import labels_since, latest_model

__all__ = ["loop_status"]


def loop_status(session: Session, config: LoopConfig) -> dict[str, Any]:
    by_annotator = [
        {"backend": backend, "annotator": name or ext, "labels": n}
        for backend, ext, name, n in session.execute(
            select(Annotator.backend, Annotator.external_id, Annotator.name, func.count(Label.id))
            .join(Label, Label.annotator_id == Annotator.id).where(Label.live())
            .group_by(Annotator.backend, Annotator.external_id, Annotator.name)
            .order_by(Annotator.backend, Annotator.external_id))
    ]
    by_backend = live_label_counts(session, Label.backend)
    pending = dict(session.execute(select(Task.backend, func.count(Task.id)).where(Task.status == "pending")
                                   .group_by(Task.backend)).all())
    model = latest_model(session)
    since = labels_since(session, model)
    milestone = config.milestone.min_labels if model is None else config.milestone.every
    votes: dict[int, list[str]] = defaultdict(list)
    for pair_id, choice in session.execute(select(Label.pair_id, Label.choice).where(
            Label.live(), Label.choice != "skip", Label.dimension == "overall")):
        votes[pair_id].append(choice)
    models = [
        {"name": m.name, "parent": m.parent.name if m.parent else None, "mode": m.mode,
         "created_at": m.created_at, "labels": m.label_snapshot.get("n_labels"),
         "metrics": {k: m.metrics.get(k) for k in ("val_loss", "train_loss", "n_pairs", "seconds")
                     if k in m.metrics}}
        for m in session.scalars(select(ModelVersion).order_by(ModelVersion.id))
    ]
    return {
        "labels_by_backend": by_backend,
        "labels_by_annotator": by_annotator,
        "pending_tasks": pending,
        "labels_since_last_model": since,
        "milestone": {"every": milestone, "progress": f"{since}/{milestone}", "due": since >= milestone},
        "current_model": model.name if model else None,
        "models": models,
        "agreement": agreement_report(votes),
    }
