"""Inter-annotator agreement over pairs labeled by several people (pure functions)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import combinations

__all__ = ["agreement_report", "krippendorff_alpha_nominal", "percent_agreement"]


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
    coincidence: Counter[tuple[str, str]] = Counter()
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
    totals: Counter[str] = Counter()
    for (x, _y), w in coincidence.items():
        totals[x] += w
    observed = sum(w for (x, y), w in coincidence.items() if x != y) / n
    expected = sum(totals[x] * totals[y] for x in totals for y in totals if x != y) / (n * (n - 1))
    if expected == 0:
        return None
    return 1 - observed / expected


def agreement_report(labels_by_pair: Mapping[int, Sequence[str]]) -> dict[str, object]:
    """Agreement over the pairs with at least two (non-skip) labels."""
    items = [list(v) for v in labels_by_pair.values() if len(v) >= 2]
    return {
        "pairs_with_several_labels": len(items),
        "percent_agreement": percent_agreement(items),
        "krippendorff_alpha": krippendorff_alpha_nominal(items),
    }
