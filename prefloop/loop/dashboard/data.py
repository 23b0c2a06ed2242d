"""The dashboard's numbers: one plain dict per panel, read from the store (and nothing else but the sync
error log and the lock file the loop itself writes). Pure reads: nothing here writes anywhere."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from prefloop.config import LoopConfig
from prefloop.loop.annotator_quality import annotators_report, gold_thresholds
from prefloop.loop.status import status_report
from prefloop.model.evaluate import calibration_bins, evaluate_predictions
from prefloop.store.dashboard import (
    heldout_predictions,
    label_times,
    loop_traces,
    model_versions,
    pending_queue,
    pool_predictions,
    prediction_dimensions,
    stale_pending_count,
    sync_lock_holder,
)
from prefloop.store.db import describe_url, session_scope
from prefloop.store.versions import latest_model, model_dimensions

__all__ = ["HIST_BINS", "PANELS", "dashboard_data"]

#: the panels, in the page's order: id → title
PANELS = {
    "model": "Learning curve",
    "labels": "Labels over time",
    "agreement": "Annotator agreement",
    "queue": "The queue",
    "audit": "Audit and dimensions",
    "health": "Health",
}
QUEUE_ROWS = 20  # pending tasks listed, highest score first
HIST_BINS = 10  # bins of the pool's uncertainty histogram (0 … 1 bit)
#: metrics of a model version, as the learning curve names them; a version's own record wins over the
#: value computed from its stored held-out predictions (for ``length_corr``, see ``_length_corr``)
CURVE_METRICS = {
    "accuracy": "held-out accuracy",
    "log_loss": "log-loss",
    "ece": "ECE",
    "length_corr": "reward–length r",
}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    value = _utc(value)
    return value.isoformat(timespec="seconds") if value is not None else None


def _num(value: Any, digits: int = 4) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else round(float(value), digits)


def _model_panel(session: Any) -> dict[str, Any]:
    versions = []
    reliability: dict[str, Any] | None = None
    for model in model_versions(session):
        held = heldout_predictions(session, model)
        computed = (
            evaluate_predictions(np.array(held.p_a), held.labels, p_tie=np.array(held.p_tie)) if held.labels else {}
        )
        row: dict[str, Any] = {
            "name": model.name,
            "parent": model.parent.name if model.parent else None,
            "mode": model.mode,
            "created_at": _iso(model.created_at),
            "labels": model.label_snapshot.get("n_labels"),
            "milestone": model.label_snapshot.get("max_label_id"),
            "dimensions": model_dimensions(model),
            "val_loss": _num(model.metrics.get("val_loss")),
            "train_loss": _num(model.metrics.get("train_loss")),
            "heldout_pairs": len(held.labels),
        }
        for key in ("accuracy", "log_loss", "ece"):
            row[key] = _num(model.metrics[key]) if key in model.metrics else _num(computed.get(key))
        row["length_corr"], row["length_corr_from"] = _length_corr(model.metrics or {}, computed)
        versions.append(row)
        decisive = [i for i, c in enumerate(held.labels) if c in ("a", "b")]
        if decisive:  # the newest model with held-out predictions draws the reliability diagram
            p_a, p_tie = np.array(held.p_a)[decisive], np.array(held.p_tie)[decisive]
            q = p_a / np.clip(1 - p_tie, 1e-12, None)
            y = np.array([held.labels[i] == "a" for i in decisive], dtype=np.float64)
            bins = calibration_bins(np.concatenate([q, 1 - q]), np.concatenate([y, 1 - y]), n_bins=10)
            reliability = {
                "model": model.name,
                "pairs": len(decisive),
                "bins": [
                    {"bin": f"{i / 10:.1f}–{(i + 1) / 10:.1f}", "confidence": _num(c), "accuracy": _num(a), "n": int(n)}
                    for i, (c, a, n) in enumerate(zip(bins["confidence"], bins["accuracy"], bins["count"], strict=True))
                    if n > 0
                ],
            }
    return {"versions": versions, "reliability": reliability, "metric_names": CURVE_METRICS}


def _length_corr(metrics: dict[str, Any], computed: dict[str, Any]) -> tuple[float | None, str | None]:
    """A version's reward–length r and where it comes from: training's validation split
    (``val_length_corr``, recorded whenever training held a split out; heads mode's out-of-bag
    validation holds none), else the audit stored with the version (its pairs' unprobed responses),
    else its held-out predictions (only where they carry rewards; stored predictions keep P(a≻b),
    not the rewards, so today this last one is never there)."""
    for source, value in (
        ("model record", metrics.get("length_corr")),
        ("validation split", metrics.get("val_length_corr")),
        ("stored audit", ((metrics.get("audit") or {}).get("length_correlation") or {}).get("r")),
        ("held-out predictions", computed.get("length_corr")),
    ):
        if _num(value) is not None:
            return _num(value), source
    return None, None


def _bucket(times: list[datetime]) -> tuple[str, str]:
    """Minutes for a loop younger than three hours, hours up to three days, days after that."""
    span = max(times) - min(times) if times else timedelta(0)
    if span <= timedelta(hours=3):
        return "minute", "%Y-%m-%dT%H:%MZ"
    if span <= timedelta(days=3):
        return "hour", "%Y-%m-%dT%H:00Z"
    return "day", "%Y-%m-%d"


def _labels_panel(session: Any) -> dict[str, Any]:
    rows = [(_utc(when), backend, who) for when, backend, who in label_times(session)]
    times = [when for when, _, _ in rows if when is not None]
    unit, fmt = _bucket(times)
    counts = Counter((when.strftime(fmt) if when else "unknown", backend, who) for when, backend, who in rows)
    series = [
        {"time": t, "backend": b, "annotator": a, "labels": n}
        for (t, b, a), n in sorted(counts.items(), key=lambda kv: kv[0])
    ]
    return {"unit": unit, "series": series, "total": len(rows)}


def _agreement_panel(engine: Engine, config: LoopConfig) -> dict[str, Any]:
    report = annotators_report(engine, thresholds=gold_thresholds(config.annotators))
    rows = [
        {
            "annotator": r["annotator"],
            "labels": r["labels"],
            "agreement": r["agreement_with_consensus"],
            "reliability": r["reliability"],
            "gold_n": r["gold"]["n"] if r.get("gold") else None,
            "gold_accuracy": r["gold"]["accuracy"] if r.get("gold") else None,
            "flags": list(r.get("reasons") or []),
        }
        for r in report["annotators"]
    ]
    km = report["kappa_matrix"]
    cells = [
        {"rater": a, "other": b, "kappa": km["matrix"][i][j]}
        for i, a in enumerate(km["annotators"])
        for j, b in enumerate(km["annotators"])
        if i != j
    ]
    return {
        "annotators": rows,
        "krippendorff_alpha": report["krippendorff_alpha"],
        "fleiss_kappa": report["fleiss_kappa"],
        "pairs_rated": report["items"],
        "pairs_with_several_labels": report["items_with_several_labels"],
        "kappa": cells,
        "labels_by_backend": report.get("labels_by_backend", {}),
    }


def _entropy_bits(p_a: float, p_tie: float) -> float:
    """Binary entropy of P(a≻b | not a tie): 1 bit where the model cannot tell the two apart."""
    q = min(max(p_a / max(1.0 - p_tie, 1e-12), 0.0), 1.0)
    return float(-sum(x * np.log2(x) for x in (q, 1.0 - q) if x > 0))


def _clip(text: str, limit: int = 100) -> str:
    return text[:limit] + ("…" if len(text) > limit else "")


def _queue_panel(session: Any, status: dict[str, Any]) -> dict[str, Any]:
    total, rows = pending_queue(session, limit=QUEUE_ROWS)
    now = datetime.now(UTC)
    tasks = [
        {
            "backend": r.backend,
            "project": r.project,
            "pair": r.pair_key,
            "prompt": _clip(r.prompt),
            "response_a": _clip(r.response_a),
            "response_b": _clip(r.response_b),
            "strategy": r.strategy,
            "score": _num(r.score),
            "model": r.model,
            "gold": r.gold,
            "pushed": r.pushed,
            "age_s": max(0, int((now - (_utc(r.created_at) or now)).total_seconds())),
        }
        for r in rows
    ]
    model = latest_model(session)
    scored = pool_predictions(session, model) if model is not None else []
    edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    counts = np.zeros(HIST_BINS, dtype=int)
    for p_a, p_tie, _ in scored:
        counts[min(int(_entropy_bits(p_a, p_tie) * HIST_BINS), HIST_BINS - 1)] += 1
    histogram = [{"bin": f"{edges[i]:.1f}–{edges[i + 1]:.1f}", "pairs": int(n)} for i, n in enumerate(counts)]
    return {
        "pending": total,
        "pending_by_backend": status["pending_tasks"],
        "shown": len(tasks),
        "tasks": tasks,
        "stale": stale_pending_count(session),
        "model": model.name if model is not None else None,
        "scored_pool": len(scored),
        "histogram": histogram if scored else [],
        "milestone": status["milestone"],
    }


def _interval(ci: Any) -> list[float | None] | None:
    return [_num(ci[0], 6), _num(ci[1], 6)] if isinstance(ci, list | tuple) and len(ci) == 2 else None


def _stored_audit(model: Any) -> dict[str, Any]:
    """The panel's copy of the audit stored with ``model`` (``metrics["audit"]``: ``audit_version``'s object)."""
    audit = model.metrics["audit"]
    length = audit.get("length_correlation") or {}
    return {
        "model": model.name,
        "audited_at": audit.get("audited_at"),
        "model_created_at": _iso(model.created_at),
        "data": audit.get("data"),
        "n_pairs": audit.get("n_pairs"),
        "n_tied_pairs": audit.get("n_tied_pairs"),
        "resamples": audit.get("resamples"),
        "confidence": audit.get("confidence"),
        "seconds": audit.get("seconds"),
        "prefers_longer": _num(audit.get("prefers_longer"), 6),
        "prefers_longer_ci": _interval(audit.get("prefers_longer_ci")),
        "length_r": _num(length.get("r"), 6),
        "length_r_ci": _interval(length.get("ci")),
        "probes": [
            {
                "name": p.get("name"),
                "description": p.get("description"),
                "mean_shift": _num(p.get("mean_shift"), 6),
                "ci": _interval(p.get("ci")),
                "flip_rate": _num(p.get("flip_rate"), 6),
                "flip_ci": _interval(p.get("flip_ci")),
                "shift_beyond_length": _num(p.get("shift_beyond_length"), 6),
                "shift_beyond_length_ci": _interval(p.get("shift_beyond_length_ci")),
                "n_flippable": p.get("n_flippable"),
            }
            for p in audit.get("probes") or []
        ],
    }


def _audit_panel(session: Any) -> dict[str, Any]:
    model = latest_model(session)
    dims = prediction_dimensions(session, model) if model is not None else {}
    versions = reversed(model_versions(session))
    audited = next((m for m in versions if isinstance((m.metrics or {}).get("audit"), dict)), None)
    return {
        # the newest version with an audit stored with it (``[milestone] audit_pairs``: sync audits each new model)
        "audit": _stored_audit(audited) if audited is not None else None,
        "model": model.name if model is not None else None,
        "dimensions": [{"dimension": d, "pairs": n, "mean_p_a": _num(m)} for d, (n, m) in dims.items()],
        "trained_dimensions": model_dimensions(model) if model is not None else [],
    }


_STAMP = re.compile(r"^--- (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$")


def _sync_errors(artifacts_dir: str, now: datetime) -> dict[str, Any]:
    """Unexpected sync errors of the last 24 h, from the log ``sync.save_traceback`` appends to."""
    path = Path(artifacts_dir) / "logs" / "sync-errors.log"
    if not path.exists():
        return {"log": str(path), "last_24h": 0, "last": None, "recorded": False}
    stamps = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _STAMP.match(line)
        if match:
            stamps.append(datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC))
    recent = [s for s in stamps if now - s <= timedelta(hours=24)]
    return {"log": str(path), "last_24h": len(recent), "last": _iso(max(stamps)) if stamps else None, "recorded": True}


def _health_panel(
    engine: Engine, session: Any, config: LoopConfig, webhooks: Callable[[], dict[str, Any]] | None
) -> dict[str, Any]:
    traces = loop_traces(session)
    lock = sync_lock_holder(engine)
    return {
        "cursors": [{**c, "updated_at": _iso(c["updated_at"])} for c in traces["cursors"]],
        "last_label_pulled_at": _iso(traces["last_label_pulled_at"]),
        "last_task_at": _iso(traces["last_task_at"]),
        "last_model_at": _iso(traces["last_model_at"]),
        "errors": _sync_errors(config.artifacts_dir, datetime.now(UTC)),
        "lock": {"held": lock.held, "holder": lock.holder, "where": lock.where},
        # the webhook counts live in the serving process, not in the store: None when not served by it
        "webhooks": webhooks() if webhooks is not None else None,
    }


def dashboard_data(
    engine: Engine, config: LoopConfig, webhooks: Callable[[], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Every panel's numbers, read from the store in one go (``status``' own report included, so the page
    and ``prefloop status --json`` can never disagree on what they share). ``webhooks``: the serving
    process's webhook counts (``ServeMetrics.webhook_summary``), when ``prefloop serve`` serves the page."""
    status = status_report(engine, config)
    panels: dict[str, Any] = {"agreement": _agreement_panel(engine, config)}
    with session_scope(engine) as session:
        panels["model"] = _model_panel(session)
        panels["labels"] = _labels_panel(session)
        panels["queue"] = _queue_panel(session, status)
        panels["audit"] = _audit_panel(session)
        panels["health"] = _health_panel(engine, session, config, webhooks)
    panels["labels"]["by_annotator"] = status["labels_by_annotator"]
    panels["labels"]["by_backend"] = status["labels_by_backend"]
    return {
        "store": describe_url(config.db_url()),
        "generated_at": _iso(datetime.now(UTC)),
        "current_model": status["current_model"],
        "panels": panels,
    }
