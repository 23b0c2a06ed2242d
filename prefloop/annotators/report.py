"""Per-annotator quality report from plain annotation records (pure: no store, no I/O).

For each annotator: labels, agreement with the leave-one-out consensus, Cohen's kappa against
every other annotator, Dawid–Skene reliability (a / b / tie confusion), tie and skip rates,
median seconds per label, position bias, gold accuracy, and ``flagged`` with ``reasons``.
Globally: Krippendorff's alpha (nominal) and Fleiss' kappa.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prefloop.annotators.agreement import (
    cohen_kappa_matrix,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    leave_one_out_agreement,
    vote_counts,
)
from prefloop.annotators.bias import position_bias
from prefloop.annotators.dawid_skene import CLASSES, DawidSkeneResult, dawid_skene

__all__ = [
    "Annotation",
    "LabelMatrix",
    "QualityThresholds",
    "annotator_report",
    "flagged_annotators",
    "label_matrix",
    "median_seconds",
]

CODE = {c: i for i, c in enumerate(CLASSES)}
GAP_CAP_S = 1800.0  # a gap between two labels longer than this is a break, not time spent on a label


@dataclass(frozen=True)
class Annotation:
    """One current label as the report needs it.

    ``swapped``: True when the annotator saw response B first, None when the order shown is
    unknown (e.g. imported labels). ``seconds``: time spent as the backend reports it (Label
    Studio's lead_time). ``created_at``: epoch seconds of submission (used for the time between
    consecutive labels where no ``seconds`` is reported, e.g. Argilla). ``gold``: the known
    answer when the label was given on a gold task.
    """

    pair_id: int
    annotator: str
    choice: str
    swapped: bool | None = None
    seconds: float | None = None
    created_at: float | None = None
    gold: str | None = None


@dataclass(frozen=True)
class QualityThresholds:
    """When an annotator is flagged (each reason needs ``min_labels`` labels to judge)."""

    min_labels: int = 10
    spammer_discrimination: float = 0.2
    position_p_value: float = 0.01
    position_share: float = 0.65
    min_agreement: float = 0.6
    min_gold_accuracy: float = 0.7
    gold_min_labels: int = 5


@dataclass
class LabelMatrix:
    """Decisive and tie labels (no skips) as a matrix: rows ↔ ``pair_ids``, columns ↔ ``annotators``."""

    pair_ids: list[int]
    annotators: list[str]
    labels: np.ndarray  # [n_items, n_annotators], -1 = no label
    index: dict[int, int] = field(default_factory=dict)


def label_matrix(
    annotations: Sequence[Annotation], annotators: Sequence[str] | None = None, include_gold: bool = True
) -> LabelMatrix:
    """Build the matrix; a second label by one annotator on one pair replaces the first."""
    names = list(annotators) if annotators is not None else sorted({a.annotator for a in annotations})
    col = {n: j for j, n in enumerate(names)}
    rows = [a for a in annotations if a.choice in CODE and a.annotator in col and (include_gold or a.gold is None)]
    pair_ids = sorted({a.pair_id for a in rows})
    index = {p: i for i, p in enumerate(pair_ids)}
    labels = np.full((len(pair_ids), len(names)), -1, dtype=np.int64)
    for a in rows:
        labels[index[a.pair_id], col[a.annotator]] = CODE[a.choice]
    return LabelMatrix(pair_ids, names, labels, index)


def median_seconds(annotations: Sequence[Annotation]) -> float | None:
    """Median time per label: the backend's own measure where given, else the gaps between
    consecutive submissions (gaps over 30 minutes are breaks and dropped)."""
    reported = [a.seconds for a in annotations if a.seconds is not None and a.seconds >= 0]
    if reported:
        return float(np.median(reported))
    stamps = np.sort([a.created_at for a in annotations if a.created_at is not None])
    gaps = np.diff(stamps)
    gaps = gaps[(gaps > 0) & (gaps <= GAP_CAP_S)]
    return float(np.median(gaps)) if gaps.size else None


def _num(value: float | None, digits: int = 4) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def _picked_first(annotations: Sequence[Annotation]) -> np.ndarray:
    return np.array(
        [(a.choice == "a") != a.swapped for a in annotations if a.choice in ("a", "b") and a.swapped is not None],
        dtype=bool,
    )


def _reasons(row: dict[str, Any], n_decisive: int, t: QualityThresholds) -> list[str]:
    reasons = []
    if (
        n_decisive >= t.min_labels
        and row["discrimination"] is not None
        and row["discrimination"] < t.spammer_discrimination
    ):
        reasons.append("spammer")
    bias = row["position_bias"]
    if (
        bias
        and bias["n"] >= t.min_labels
        and bias["p_value"] < t.position_p_value
        and max(bias["first_shown_share"], 1 - bias["first_shown_share"]) >= t.position_share
    ):
        reasons.append("position-biased")
    if (
        row["agreement_with_consensus"] is not None
        and row["consensus_items"] >= t.min_labels
        and row["agreement_with_consensus"] < t.min_agreement
    ):
        reasons.append("low agreement")
    gold = row["gold"]
    if gold and gold["n"] >= t.gold_min_labels and gold["accuracy"] < t.min_gold_accuracy:
        reasons.append("failed gold")
    return reasons


def _fit_with_gold(annotations: Sequence[Annotation], names: list[str]) -> DawidSkeneResult:
    """Dawid–Skene on every label, gold checks included with their known answer clamped; the
    result is restricted to the ordinary items (rows of ``label_matrix(include_gold=False)``)."""
    full = label_matrix(annotations, names, include_gold=True)
    known = np.full(len(full.pair_ids), -1, dtype=np.int64)
    for a in annotations:
        if a.gold in CODE and a.pair_id in full.index:
            known[full.index[a.pair_id]] = CODE[a.gold]
    fit = dawid_skene(full.labels, len(CLASSES), known=known)
    ordinary = sorted({a.pair_id for a in annotations if a.choice in CODE and a.gold is None})
    rows = [full.index[p] for p in ordinary]
    return DawidSkeneResult(
        posteriors=fit.posteriors[rows],
        priors=fit.priors,
        confusion=fit.confusion,
        log_likelihood=fit.log_likelihood,
        n_iter=fit.n_iter,
        converged=fit.converged,
    )


def annotator_report(
    annotations: Sequence[Annotation], thresholds: QualityThresholds | None = None, ds: DawidSkeneResult | None = None
) -> dict[str, Any]:
    """The report of ``prefloop annotators`` (JSON-ready); see the module docstring.

    Statistics over items use labels on ordinary tasks only: gold tasks score annotators
    (``gold``) but do not enter agreement, kappa or Dawid–Skene.
    """
    t = thresholds or QualityThresholds()
    names = sorted({a.annotator for a in annotations})
    matrix = label_matrix(annotations, names, include_gold=False)
    labels = matrix.labels
    k = len(CLASSES)
    fit = ds or _fit_with_gold(annotations, names) if labels.size else None
    loo, loo_n = leave_one_out_agreement(labels, k)
    kappa = cohen_kappa_matrix(labels, k)
    by_name: dict[str, list[Annotation]] = {n: [] for n in names}
    for a in annotations:
        by_name[a.annotator].append(a)
    rows = []
    for j, name in enumerate(names):
        mine = by_name[name]
        ordinary = [a for a in mine if a.gold is None]
        answered = [a for a in ordinary if a.choice != "skip"]
        gold = [a for a in mine if a.gold is not None and a.choice != "skip"]
        row: dict[str, Any] = {
            "annotator": name,
            "labels": len(answered),
            "agreement_with_consensus": _num(loo[j]) if loo_n[j] else None,
            "consensus_items": int(loo_n[j]),
            "reliability": _num(fit.reliability()[j]) if fit is not None and (labels[:, j] >= 0).any() else None,
            "discrimination": _num(fit.discrimination()[j]) if fit is not None and (labels[:, j] >= 0).any() else None,
            "confusion": (
                {t_: dict(zip(CLASSES, map(_num, fit.confusion[j, i]), strict=True)) for i, t_ in enumerate(CLASSES)}
                if fit is not None
                else None
            ),
            "tie_rate": _num(sum(a.choice == "tie" for a in answered) / len(answered)) if answered else None,
            "skip_rate": _num(sum(a.choice == "skip" for a in ordinary) / len(ordinary)) if ordinary else None,
            "median_seconds": _num(median_seconds(mine), 2),
            "position_bias": position_bias(_picked_first(ordinary)),
            "kappa": {other: _num(kappa[j, i]) for i, other in enumerate(names) if i != j},
            "gold": (
                {"n": len(gold), "accuracy": _num(sum(a.choice == a.gold for a in gold) / len(gold))} if gold else None
            ),
        }
        if row["position_bias"]:
            pb = row["position_bias"]
            row["position_bias"] = {
                **pb,
                "first_shown_share": _num(pb["first_shown_share"]),
                "p_value": float(f"{pb['p_value']:.3g}"),
            }
        row["reasons"] = _reasons(row, sum(a.choice in ("a", "b") for a in answered), t)
        row["flagged"] = bool(row["reasons"])
        rows.append(row)
    items = [[CLASSES[c] for c in r if c >= 0] for r in labels]
    return {
        "annotators": rows,
        "krippendorff_alpha": _num(krippendorff_alpha_nominal(items)),
        "fleiss_kappa": _num(fleiss_kappa(vote_counts(labels, k))),
        "items": len(matrix.pair_ids),
        "items_with_several_labels": int(((labels >= 0).sum(axis=1) >= 2).sum()),
        "kappa_matrix": {"annotators": names, "matrix": [[_num(v) for v in r] for r in kappa]},
    }


def flagged_annotators(report: Mapping[str, Any]) -> set[str]:
    """Names of the annotators the report flags."""
    return {row["annotator"] for row in report["annotators"] if row["flagged"]}
