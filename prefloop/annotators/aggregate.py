"""Labels → one verdict (or soft target) per pair: majority vote or Dawid–Skene posteriors."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from prefloop.annotators.dawid_skene import CLASSES, dawid_skene, majority_vote

__all__ = ["AGGREGATIONS", "aggregate_labels"]

AGGREGATIONS = ("majority", "dawid-skene", "none")


def aggregate_labels(
    pair_ids: Sequence[int], annotators: Sequence[Hashable], choices: Sequence[str], method: str
) -> dict[int, np.ndarray | None]:
    """Per pair, a distribution over (a, b, tie); None where majority finds no single winner.

    * ``majority``: one-hot of the most frequent choice; a tie for the most votes is None
      (the pair is a disagreement).
    * ``dawid-skene``: the posterior over the true class from a Dawid–Skene fit on all the
      labels given (annotators with more reliable records count for more).

    Skips are ignored; a second label by one annotator on one pair replaces the first.
    """
    if method not in ("majority", "dawid-skene"):
        raise ValueError(f"unknown aggregation {method!r}; use one of {', '.join(AGGREGATIONS[:2])}")
    code = {c: i for i, c in enumerate(CLASSES)}
    keep = [i for i, c in enumerate(choices) if c in code]
    items = sorted({pair_ids[i] for i in keep})
    people = sorted({annotators[i] for i in keep}, key=str)
    row, col = {p: i for i, p in enumerate(items)}, {a: j for j, a in enumerate(people)}
    labels = np.full((len(items), len(people)), -1, dtype=np.int64)
    for i in keep:
        labels[row[pair_ids[i]], col[annotators[i]]] = code[choices[i]]
    if method == "majority":
        winners = majority_vote(labels, len(CLASSES))
        return {p: (np.eye(len(CLASSES))[w] if w >= 0 else None) for p, w in zip(items, winners, strict=True)}
    posteriors = dawid_skene(labels, len(CLASSES)).posteriors
    return {p: posteriors[i] for i, p in enumerate(items)}
