"""``prefloop status``: where the loop stands, from the store alone (no backend call)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from prefloop.annotators.agreement import agreement_report
from prefloop.config import LoopConfig
from prefloop.store.db import session_scope
from prefloop.store.models import Label
from prefloop.store.queries import labels_by_annotator, live_label_counts, overall_votes, store_stats
from prefloop.store.tasks import pending_by_backend
from prefloop.store.versions import latest_model, milestone_due, model_summaries

__all__ = ["loop_status", "status_lines", "status_report", "store_report"]


def _rounded(value: Any, digits: int = 4) -> Any:
    """Metrics from a handful of pairs do not deserve 16 digits."""
    return round(value, digits) if isinstance(value, float) else value


def loop_status(session: Session, config: LoopConfig) -> dict[str, Any]:
    """Labels, queue, milestone (the same rule sync applies), model versions and agreement."""
    model = latest_model(session)
    m = config.milestone
    due = milestone_due(session, every=m.every, min_labels=m.min_labels, min_interval_s=m.min_interval_s)
    models = [
        {**row, "metrics": {k: _rounded(v) for k, v in row["metrics"].items()}} for row in model_summaries(session)
    ]
    return {
        "labels_by_backend": live_label_counts(session, Label.backend),
        "labels_by_annotator": labels_by_annotator(session),
        "pending_tasks": pending_by_backend(session),
        "labels_since_last_model": due.since,
        "milestone": {"every": due.needed, "progress": f"{due.since}/{due.needed}", "due": due.due},
        "current_model": model.name if model else None,
        "models": models,
        "agreement": {k: _rounded(v) for k, v in agreement_report(overall_votes(session)).items()},
    }


def status_report(engine: Engine, config: LoopConfig) -> dict[str, Any]:
    """``prefloop status``: ``loop_status`` read in one session of ``engine``."""
    with session_scope(engine) as session:
        return loop_status(session, config)


def store_report(engine: Engine) -> dict[str, Any]:
    """``prefloop stats``: counts of pairs, labels (by choice, dimension, backend), annotators and tasks."""
    with session_scope(engine) as session:
        return store_stats(session)


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
    lines = [
        f"model       {data['current_model'] or 'none yet'}"
        + (f" ({len(models)} versions)" if len(models) > 1 else ""),
        f"milestone   {milestone['progress']} new labels since the last model"
        + (" (retrain due)" if milestone["due"] else ""),
    ]
    pending = ", ".join(f"{b}: {n}" for b, n in sorted(data["pending_tasks"].items())) or "none"
    lines.append(f"pending     {pending}")
    by_backend = ", ".join(f"{b}: {n}" for b, n in sorted(data["labels_by_backend"].items())) or "none"
    lines.append(f"labels      {by_backend}")
    if data["labels_by_annotator"]:
        lines.append(
            "annotators  "
            + ", ".join(
                f"{row['annotator']} ({row['backend']}): {row['labels']}" for row in data["labels_by_annotator"]
            )
        )
    for m in models:
        metrics = "  ".join(f"{k} {_text(v)}" for k, v in m["metrics"].items())
        lines.append(
            f"  {m['name']}  from {m['parent'] or '-'}  {m['mode']}  {_text(m['labels'])} labels"
            + (f"  {metrics}" if metrics else "")
        )
    agreement = data["agreement"]
    if agreement.get("pairs_with_several_labels"):
        percent = agreement.get("percent_agreement")
        lines.append(
            f"agreement   {agreement['pairs_with_several_labels']} pairs with several labels: "
            f"{f'{percent:.1%}' if isinstance(percent, float) else '-'} agree, "
            f"Krippendorff's alpha {_text(agreement.get('krippendorff_alpha'))}"
        )
    else:
        lines.append("agreement   no pair has several labels yet")
    return lines
