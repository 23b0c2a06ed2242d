"""Inter-annotator agreement (pure functions over labels, no store, no I/O).

Two input shapes are used: ``items`` (one list of labels per item, any number of labels,
annotators anonymous) for the whole-pool statistics, and a label matrix ``L`` of shape
``[n_items, n_annotators]`` holding class codes ``0..K-1`` with ``-1`` where the annotator
did not label the item, for anything that needs to know who said what.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np

__all__ = [
    "agreement_report",
    "cohen_kappa",
    "cohen_kappa_matrix",
    "fleiss_kappa",
    "krippendorff_alpha_nominal",
    "leave_one_out_agreement",
    "percent_agreement",
    "vote_counts",
]


def percent_agreement(items: Sequence[Sequence[str]]) -> float | None:
    """Share of annotator pairs (within each item) that gave the same choice."""
    agree = total = 0
    for labels in items:
        for x, y in combinations(labels, 2):
            total += 1
            agree += x == y
    return agree / total if total else None


def krippendorff_alpha_nominal(items: Sequence[Sequence[str]]) -> float | None:
    """Krippendorff's alpha for nominal data; handles any number of annotators per item.

    alpha = 1 − D_o / D_e, from the coincidence matrix of values paired within items.
    Items with fewer than two labels carry no information and are ignored. None when
    undefined (no pairable items, or every label is the same value).
    """
    coincidence: defaultdict[tuple[str, str], float] = defaultdict(float)
    for labels in items:
        m = len(labels)
        if m < 2:
            continue
        for i, x in enumerate(labels):
            for j, y in enumerate(labels):
                if i != j:
                    coincidence[(x, y)] += 1 / (m - 1)
    n = sum(coincidence.values())
    if n <= 1:
        return None
    totals: defaultdict[str, float] = defaultdict(float)
    for (x, _y), w in coincidence.items():
        totals[x] += w
    observed = sum(w for (x, y), w in coincidence.items() if x != y) / n
    expected = sum(totals[x] * totals[y] for x in totals for y in totals if x != y) / (n * (n - 1))
    if expected == 0:
        return None
    return 1 - observed / expected


def vote_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``[n_items, K]`` how many annotators gave each class to each item (``-1`` = no label)."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.zeros((labels.shape[0], n_classes), dtype=np.int64)
    for k in range(n_classes):
        counts[:, k] = (labels == k).sum(axis=1)
    return counts


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa from a ``[n_items, K]`` table of votes per class.

    Items with fewer than two votes are ignored. With a varying number of raters per item
    each item's agreement uses its own count (the usual generalisation); with a constant
    count this is exactly Fleiss (1971). None when undefined (chance agreement is 1).
    """
    counts = np.asarray(counts, dtype=np.float64)
    n_i = counts.sum(axis=1)
    keep = n_i >= 2
    if not keep.any():
        return None
    counts, n_i = counts[keep], n_i[keep]
    p_i = ((counts**2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_j = counts.sum(axis=0) / n_i.sum()
    p_e = float((p_j**2).sum())
    if p_e >= 1.0:
        return None
    return float((p_i.mean() - p_e) / (1 - p_e))


def cohen_kappa(x: Sequence[int] | np.ndarray, y: Sequence[int] | np.ndarray, n_classes: int) -> float | None:
    """Cohen's kappa of two annotators over the items both labelled (codes ``0..K-1``).

    None when they share no item or chance agreement is 1 (both always gave one class).
    """
    x, y = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    if x.size == 0:
        return None
    table = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(table, (x, y), 1.0)
    table /= table.sum()
    p_o = float(np.trace(table))
    p_e = float(table.sum(axis=1) @ table.sum(axis=0))
    if p_e >= 1.0:
        return None
    return (p_o - p_e) / (1 - p_e)


def cohen_kappa_matrix(labels: np.ndarray, n_classes: int, min_shared: int = 1) -> np.ndarray:
    """``[n_annotators, n_annotators]`` pairwise Cohen's kappa (NaN where undefined or fewer
    than ``min_shared`` common items); the diagonal is 1."""
    labels = np.asarray(labels, dtype=np.int64)
    m = labels.shape[1]
    out = np.full((m, m), np.nan)
    for u in range(m):
        out[u, u] = 1.0
        for v in range(u + 1, m):
            both = (labels[:, u] >= 0) & (labels[:, v] >= 0)
            if both.sum() < min_shared:
                continue
            k = cohen_kappa(labels[both, u], labels[both, v], n_classes)
            out[u, v] = out[v, u] = np.nan if k is None else k
    return out


def leave_one_out_agreement(labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per annotator: share of their labels equal to the plurality of the OTHER annotators.

    An item counts for annotator ``u`` when ``u`` labelled it and the others' votes have a
    single most frequent class. Returns ``(agreement [m], n_items_compared [m])``;
    agreement is NaN where nothing could be compared.
    """
    labels = np.asarray(labels, dtype=np.int64)
    counts = vote_counts(labels, n_classes)
    m = labels.shape[1]
    agree = np.full(m, np.nan)
    used = np.zeros(m, dtype=np.int64)
    for u in range(m):
        mine = labels[:, u]
        rows = mine >= 0
        others = counts[rows].copy()
        others[np.arange(others.shape[0]), mine[rows]] -= 1
        top = others.max(axis=1)
        unique = (others == top[:, None]).sum(axis=1) == 1
        ok = (top > 0) & unique
        if ok.any():
            used[u] = int(ok.sum())
            agree[u] = float((others[ok].argmax(axis=1) == mine[rows][ok]).mean())
    return agree, used


def agreement_report(labels_by_pair: Mapping[int, Sequence[str]]) -> dict[str, object]:
    """Agreement over the pairs with at least two (non-skip) labels."""
    items = [list(v) for v in labels_by_pair.values() if len(v) >= 2]
    return {
        "pairs_with_several_labels": len(items),
        "percent_agreement": percent_agreement(items),
        "krippendorff_alpha": krippendorff_alpha_nominal(items),
    }
