"""Acquisition scores: pure numpy functions of an ensemble's pair probabilities.

Every function takes ``p`` of shape ``[n_pairs, K]`` — member k's probability that
response a wins outright, P_k(a≻b) — and returns one score per pair, shape ``[n_pairs]``,
where **higher means more worth labelling**.

Ties: when ``p_tie`` is given (shape ``[n]``, shared by all members, or ``[n, K]``) each
member predicts three outcomes (a wins, b wins, tie) = ``(p, 1 − p − p_tie, p_tie)``, as
Davidson / Rao-Kupper models do; without it the outcomes are ``(p, 1 − p)``.

Entropies are in nats. Nothing here imports torch, the store or a backend.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "bald",
    "disagreement",
    "entropy",
    "logit_disagreement",
    "margin",
    "outcome_probs",
    "random_scores",
    "reward_gaps",
]

_EPS = 1e-12


def _members(p: np.ndarray) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim == 1:  # a single member
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"p must have shape [n_pairs, n_members], got {arr.shape}")
    return arr


def outcome_probs(p: np.ndarray, p_tie: np.ndarray | None = None) -> np.ndarray:
    """Per-member outcome distribution, shape ``[n, K, C]``.

    ``C = 2``: (P(a≻b), P(b≻a)) = (p, 1 − p) without ties;
    ``C = 3``: (p, 1 − p − p_tie, p_tie) with ties (P(b≻a) clipped at 0 for safety).
    """
    pm = np.clip(_members(p), 0.0, 1.0)
    if p_tie is None:
        return np.stack([pm, 1.0 - pm], axis=-1)
    t = np.asarray(p_tie, dtype=np.float64)
    if t.ndim == 1:
        t = t[:, None]
    t = np.broadcast_to(np.clip(t, 0.0, 1.0), pm.shape)
    pb = np.clip(1.0 - pm - t, 0.0, 1.0)
    return np.stack([pm, pb, t], axis=-1)


def _entropy_last(q: np.ndarray) -> np.ndarray:
    """H(q) = −Σ_c q_c log q_c over the last axis (0·log 0 = 0)."""
    return -np.sum(q * np.log(np.clip(q, _EPS, None)), axis=-1)


def random_scores(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform [0, 1) scores: the random-acquisition baseline (top-k of them = a uniform sample)."""
    return rng.random(n)


def entropy(p: np.ndarray, p_tie: np.ndarray | None = None) -> np.ndarray:
    """Predictive entropy of the ensemble mean.

    ``H[ȳ] = −Σ_c p̄_c log p̄_c`` with ``p̄_c = (1/K) Σ_k p_{k,c}`` over the outcomes c
    (2 without ties: maximal ``log 2`` at p̄ = 0.5; 3 with ties: maximal ``log 3``).
    Captures total uncertainty: both label noise the model expects and model doubt.
    """
    mean = outcome_probs(p, p_tie).mean(axis=1)
    return _entropy_last(mean)


def bald(p: np.ndarray, p_tie: np.ndarray | None = None) -> np.ndarray:
    """BALD: mutual information between the label and the model (Houlsby et al. 2011).

    ``I = H[(1/K) Σ_k p_k] − (1/K) Σ_k H[p_k]``: the entropy of the mean minus the mean
    entropy of the members. Zero when all members agree (however unsure each one is), large
    when confident members contradict each other: it targets what labels can teach, not
    irreducible noise. Always ≥ 0 (Jensen); clipped at 0 against rounding.
    """
    q = outcome_probs(p, p_tie)
    total = _entropy_last(q.mean(axis=1))
    expected = _entropy_last(q).mean(axis=1)
    return np.maximum(total - expected, 0.0)


def disagreement(p: np.ndarray, p_tie: np.ndarray | None = None) -> np.ndarray:
    """Variance of P(a≻b) across members: ``(1/K) Σ_k (p_k − p̄)²`` (population variance).

    Zero when members agree; at most 0.25. ``p_tie`` is accepted for a uniform signature and
    ignored (the spread of P(a≻b) already measures the members' disagreement).
    """
    del p_tie
    return _members(p).var(axis=1)


def logit_disagreement(p: np.ndarray, p_tie: np.ndarray | None = None, eps: float = 1e-6) -> np.ndarray:
    """Variance across members of the reward gap implied by each member.

    ``d_k = log P_k(a≻b) − log P_k(b≻a)``: exactly the reward difference r_a − r_b for
    Bradley-Terry and Davidson models. Unlike ``disagreement`` it does not saturate near 0
    or 1, so members at 0.99 and 0.9999 disagree here. Probabilities are clipped to
    ``[eps, 1 − eps]``.
    """
    return reward_gaps(p, p_tie, eps).var(axis=1)


def reward_gaps(p: np.ndarray, p_tie: np.ndarray | None = None, eps: float = 1e-6) -> np.ndarray:
    """Each member's implied reward gap ``d_k = log P_k(a≻b) − log P_k(b≻a)``, shape ``[n, K]``.

    Exactly r_a − r_b for Bradley-Terry and Davidson members (approximately for Rao-Kupper);
    how scores that reason about rewards recover them when only probabilities are stored.
    Probabilities are clipped to ``[eps, 1 − eps]``, so ``|d_k| ≤ log((1 − eps)/eps)``.
    """
    q = np.clip(outcome_probs(p, p_tie), eps, 1.0 - eps)
    return np.log(q[..., 0]) - np.log(q[..., 1])


def margin(p: np.ndarray, p_tie: np.ndarray | None = None) -> np.ndarray:
    """Smallest-margin uncertainty: ``1 − (p̄_(1) − p̄_(2))``, the two most likely outcomes of the mean.

    Without ties this is ``1 − |2p̄ − 1|``: 1 at p̄ = 0.5, 0 when the mean is certain.
    Higher = more uncertain, so top-k of it picks the smallest margins.
    """
    mean = outcome_probs(p, p_tie).mean(axis=1)
    if mean.shape[-1] == 2:
        return 1.0 - np.abs(mean[:, 0] - mean[:, 1])
    top2 = -np.partition(-mean, 1, axis=-1)[:, :2]
    return 1.0 - (top2[:, 0] - top2[:, 1])
