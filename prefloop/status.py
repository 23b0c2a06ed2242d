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

__all__ = ["loop_status", "status_lines"]


def _rounded(value: Any, digits: int = 4) -> Any:
    """Metrics from a handful of pairs do not deserve 16 digits."""
    return round(value, digits) if isinstance(value, float) else value


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
         "metrics": {k: _rounded(m.metrics.get(k)) for k in ("val_loss", "train_loss", "n_pairs", "seconds")
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
        "agreement": {k: _rounded(v) for k, v in agreement_report(votes).items()},
    }


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def status_lines(data: dict[str, Any]) -> list[str]:
    """``loop_status`` as lines a person reads (``--json`` keeps the structure)."""
    models = data["models"]
    milestone = data["milestone"]
    lines = [f"model       {data['current_model'] or 'none yet'}"
             + (f" ({len(models)} versions)" if len(models) > 1 else ""),
             f"milestone   {milestone['progress']} new labels since the last model"
             + (" (retrain due)" if milestone["due"] else "")]
    pending = ", ".join(f"{b}: {n}" for b, n in sorted(data["pending_tasks"].items())) or "none"
    lines.append(f"pending     {pending}")
    by_backend = ", ".join(f"{b}: {n}" for b, n in sorted(data["labels_by_backend"].items())) or "none"
    lines.append(f"labels      {by_backend}")
    if data["labels_by_annotator"]:
        lines.append("annotators  " + ", ".join(f"{row['annotator']} ({row['backend']}): {row['labels']}"
                                                for row in data["labels_by_annotator"]))
    for m in models:
        metrics = "  ".join(f"{k} {_text(v)}" for k, v in m["metrics"].items())
        lines.append(f"  {m['name']}  from {m['parent'] or '-'}  {m['mode']}  {_text(m['labels'])} labels"
                     + (f"  {metrics}" if metrics else ""))
    agreement = data["agreement"]
    if agreement.get("pairs_with_several_labels"):
        percent = agreement.get("percent_agreement")
        lines.append(f"agreement   {agreement['pairs_with_several_labels']} pairs with several labels: "
                     f"{f'{percent:.1%}' if isinstance(percent, float) else '-'} agree, "
                     f"Krippendorff's alpha {_text(agreement.get('krippendorff_alpha'))}")
    else:
        lines.append("agreement   no pair has several labels yet")
    return lines
