"""Acquisition across the heads of a multi-objective model (pure numpy).

A model with a head per dimension (helpful, harmless, ...) gives, for each pair, one P(a≻b)
per head. Where the heads prefer different responses the objectives are in tension on that
pair; those are the pairs where a combined reward (weights, or a constraint) is decided, and
labels there tell the heads apart.
"""

from __future__ import annotations

import numpy as np

__all__ = ["decisive_probs", "dimension_disagreement"]


def decisive_probs(p_a: np.ndarray, p_tie: np.ndarray | None = None) -> np.ndarray:
    """q = P(a≻b | not a tie) = P(a≻b) / (1 − P(tie)), elementwise (P(tie) = 0 when not given)."""
    p_a = np.asarray(p_a, dtype=np.float64)
    if p_tie is None:
        return p_a
    rest = 1.0 - np.asarray(p_tie, dtype=np.float64)
    return np.divide(p_a, rest, out=np.full_like(p_a, 0.5), where=rest > 1e-12)


def dimension_disagreement(q: np.ndarray) -> np.ndarray:
    """How strongly the heads prefer different responses: one score per pair, in [0, 1].

    ``q`` [n, D] is each head's decisive P(a≻b). With q⁺ = max_d q_d and q⁻ = min_d q_d,

        score = 2·max(0, min(q⁺ − ½, ½ − q⁻))

    It is 0 unless some head prefers a (q > ½) while another prefers b (q < ½), and then it is
    the confidence of the LESS confident of the two opposing heads: [0.9, 0.2] → 2·min(0.4, 0.3)
    = 0.6, while [0.9, 0.6] (both prefer a) → 0. A single head (D = 1) never disagrees.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"dimension_disagreement takes [n_pairs, n_dimensions], got shape {q.shape}")
    if q.shape[1] < 2:
        return np.zeros(q.shape[0])
    return 2.0 * np.maximum(0.0, np.minimum(q.max(axis=1) - 0.5, 0.5 - q.min(axis=1)))
