"""``prefloop annotators``: per-annotator quality from the store (joins the store and ``annotators``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from prefloop.annotators import Annotation, QualityThresholds, annotator_report
from prefloop.config import AnnotatorSettings
from prefloop.store.annotations import AnnotationRow, annotation_rows
from prefloop.store.db import session_scope

__all__ = ["annotations_from_rows", "annotators_report", "gold_thresholds"]


def annotations_from_rows(rows: Sequence[AnnotationRow]) -> list[Annotation]:
    """Store rows → report records. An annotator is named by their name (or external id), with the
    backend prepended only where two backends know different people by the same name."""
    ids_by_name: dict[str, set[int]] = {}
    for r in rows:
        ids_by_name.setdefault(r.name or r.external_id, set()).add(r.annotator_id)
    clash = {n for n, ids in ids_by_name.items() if len(ids) > 1}

    def who(r: AnnotationRow) -> str:
        name = r.name or r.external_id
        return f"{r.backend}:{r.external_id}" if name in clash else name

    return [
        Annotation(
            pair_id=r.pair_id,
            annotator=who(r),
            choice=r.choice,
            swapped=r.swapped,
            seconds=r.lead_time,
            created_at=r.created_at.timestamp() if r.created_at else None,
            gold=r.gold,
        )
        for r in rows
    ]


def gold_thresholds(settings: AnnotatorSettings) -> QualityThresholds:
    """The report's thresholds with the gold check of ``[annotators]`` (the one sync's training applies)."""
    return QualityThresholds(min_gold_accuracy=settings.min_gold_accuracy, gold_min_labels=settings.gold_min_labels)


def annotators_report(
    engine: Engine, out: str | None = None, dimension: str = "overall", thresholds: QualityThresholds | None = None
) -> dict[str, Any]:
    """The per-annotator report; with ``out``, also writes ``kappa_heatmap.png`` and ``annotators.json``."""
    with session_scope(engine) as session:
        rows = annotation_rows(session, dimension=dimension)
    report = annotator_report(annotations_from_rows(rows), thresholds)
    report["labels_by_backend"] = dict(Counter(r.backend for r in rows if r.choice != "skip"))
    if out:
        import json

        from prefloop.annotators.plots import plot_kappa_heatmap

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        km = report["kappa_matrix"]
        names = km["annotators"]
        matrix = np.array([[np.nan if v is None else v for v in r] for r in km["matrix"]], dtype=np.float64)
        report["heatmap"] = (
            str(plot_kappa_heatmap(names, matrix.reshape(len(names), len(names)), folder / "kappa_heatmap.png"))
            if names
            else None  # no annotator yet: nothing to draw
        )
        (folder / "annotators.json").write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
    return report
