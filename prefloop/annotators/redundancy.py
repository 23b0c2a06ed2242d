"""Adaptive redundancy: ask for a second or third label only where it is worth it (pure policy).

One label per pair is the default. A pair earns one more label when its annotators disagree,
when the model is unsure about it, or when its only label contradicts a confident model;
never more than ``max_labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RedundancyPolicy", "labels_wanted"]


@dataclass(frozen=True)
class RedundancyPolicy:
    """``uncertain_margin``: the model is unsure when |P(a≻b) − 0.5| is below it;
    ``confident_margin``: sure enough that a single label against it earns a second opinion."""

    max_labels: int = 3
    uncertain_margin: float = 0.15
    confident_margin: float = 0.35


def labels_wanted(
    votes: Sequence[Sequence[str]], p_a: Sequence[float | None], policy: RedundancyPolicy | None = None
) -> np.ndarray:
    """How many labels each pair should have: its current count, or one more.

    ``votes[i]`` holds pair i's labels so far ('a', 'b', 'tie'; skips left out by the caller),
    ``p_a[i]`` the model's P(a≻b) (None: no model yet, which counts as unsure).
    """
    policy = policy or RedundancyPolicy()
    out = np.zeros(len(votes), dtype=np.int64)
    for i, (given, p) in enumerate(zip(votes, p_a, strict=True)):
        n = len(given)
        out[i] = n
        if n == 0 or n >= policy.max_labels:
            continue
        disagree = len(set(given)) > 1
        unsure = p is None or abs(p - 0.5) < policy.uncertain_margin
        contradicted = (
            n == 1
            and p is not None
            and abs(p - 0.5) >= policy.confident_margin
            and given[0] in ("a", "b")
            and (given[0] == "a") != (p > 0.5)
        )
        if disagree or (n == 1 and (unsure or contradicted)):
            out[i] = n + 1
    return out
