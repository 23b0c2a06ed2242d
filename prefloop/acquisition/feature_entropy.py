"""BAL-PM's feature-space entropy term: keep the acquired set spread out in embedding space.

Melo et al. 2024, "Deep Bayesian Active Learning for Preference Modeling in Large Language
Models": choose, one at a time, the candidate that maximises its epistemic score plus
``β`` times the gain in a k-nearest-neighbour (Kozachenko–Leonenko) entropy estimate of the
acquired set in the LLM's feature space; the picks so far join the set, so the batch spreads.
Implemented from the paper's description (no source code was consulted); where the paper
refines the estimator (e.g. its use of unlabelled points at small set sizes) this keeps the
plain estimator below.

Numpy only; distances are Euclidean; cost ``O(M·N·d)`` to start (M candidates, N acquired)
plus ``O(M·d)`` per pick.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["entropy_greedy_select", "knn_distances", "knn_entropy", "knn_entropy_gain"]

_FLOOR = 1e-8  # distance floor: an exact duplicate gets a very negative, not infinite, gain


def _digamma_int(n: int) -> float:
    """ψ(n) for a positive integer: −γ + Σ_{j<n} 1/j."""
    return -0.5772156649015329 + sum(1.0 / j for j in range(1, n))


def knn_distances(x: np.ndarray, ref: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """The ``k`` smallest Euclidean distances from each row of ``x`` to the rows of ``ref``, ascending.

    Shape ``[len(x), k]``; padded with ``inf`` when ``ref`` has fewer than ``k`` rows.
    """
    x = np.asarray(x, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    out = np.full((x.shape[0], k), np.inf)
    m = min(k, ref.shape[0]) if ref.size else 0
    if m == 0:
        return out
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    for lo in range(0, x.shape[0], chunk):
        xc = x[lo : lo + chunk]
        d2 = np.einsum("ij,ij->i", xc, xc)[:, None] - 2.0 * xc @ ref.T + ref_sq[None, :]
        d = np.sqrt(np.maximum(d2, 0.0))
        part = np.partition(d, m - 1, axis=1)[:, :m] if m < d.shape[1] else d
        out[lo : lo + chunk, :m] = np.sort(part, axis=1)
    return out


def knn_entropy(x: np.ndarray, k: int = 1) -> float:
    """Kozachenko–Leonenko differential entropy estimate (nats) of the points ``x`` ``[N, d]``.

    ``Ĥ = ψ(N) − ψ(k) + log V_d + (d/N) Σ_i log ρ_k(i)``, with ρ_k(i) the distance from x_i to
    its k-th nearest other point and ``V_d = π^{d/2} / Γ(d/2 + 1)`` the unit ball's volume.
    Needs ``N > k``.
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    if n <= k:
        raise ValueError(f"knn_entropy needs more than k={k} points, got {n}")
    rho = knn_distances(x, x, k + 1)[:, k]  # the nearest "neighbour" at distance 0 is the point itself
    log_vd = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)
    return _digamma_int(n) - _digamma_int(k) + log_vd + d * float(np.mean(np.log(np.maximum(rho, _FLOOR))))


def knn_entropy_gain(kth_distance: np.ndarray, n_acquired: int, dim: int) -> np.ndarray:
    """Entropy gained by adding each candidate to an acquired set of ``n_acquired`` points.

    In the Kozachenko–Leonenko estimate, adding x to a set of N points adds its own term
    ``(d/(N+1))·log ρ_k(x)`` (ρ_k = ``kth_distance``, its distance to the k-th nearest acquired
    point); the other changes (ψ(N+1) − ψ(N), the reweighting of the old terms) are the same
    for every candidate and are dropped, and so are the few old points whose neighbourhood x
    would enter. Zero for every candidate while the set is empty.
    """
    rho = np.asarray(kth_distance, dtype=np.float64)
    if n_acquired == 0:
        return np.zeros_like(rho)
    return (dim / (n_acquired + 1)) * np.log(np.maximum(rho, _FLOOR))


def entropy_greedy_select(
    scores: np.ndarray,
    embeddings: np.ndarray,
    candidates: np.ndarray,
    k: int,
    acquired: np.ndarray | None = None,
    beta: float = 1.0,
    n_neighbors: int = 1,
    dim: int | None = None,
    prompt_ids: np.ndarray | None = None,
    max_per_prompt: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """BAL-PM's greedy batch: ``k`` of ``candidates`` (pool indices), each maximising score + β·entropy gain.

    At each step pick ``argmax_x  scores[x] + β · knn_entropy_gain(ρ_k(x, A), |A|, dim)``
    over the candidates left, then add x to the acquired set A. A starts as ``acquired``
    (embeddings ``[m, d]`` of the pairs labelled so far; none = empty). ``dim`` is the ``d`` of
    the estimator (default: the embedding width); a smaller one weakens the entropy term the
    way a smaller ``β`` does. Per-prompt caps hold. Returns (pool indices in pick order, the
    criterion each was picked at). Deterministic: ties go to the earlier candidate.
    """
    cand = np.asarray(candidates, dtype=np.int64)
    k = min(k, cand.size)
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    x = np.asarray(embeddings[np.sort(cand)], dtype=np.float64)
    x = x[np.argsort(np.argsort(cand))]  # back to the candidates' order
    dim = x.shape[1] if dim is None else dim
    acq = np.empty((0, x.shape[1])) if acquired is None else np.asarray(acquired, dtype=np.float64)
    n_acq = acq.shape[0]
    knn = knn_distances(x, acq, n_neighbors)  # [M, n_neighbors], ascending, inf-padded
    s = np.asarray(scores, dtype=np.float64)[cand]
    s = np.where(np.isnan(s), -np.inf, s)
    pids = None if prompt_ids is None or max_per_prompt is None else np.asarray(prompt_ids)[cand]
    counts: dict[object, int] = {}
    alive = np.ones(cand.size, dtype=bool)
    chosen: list[int] = []
    crits: list[float] = []
    for _ in range(k):
        if not alive.any():
            break
        rho = knn[:, min(n_neighbors, n_acq) - 1] if n_acq else np.zeros(cand.size)
        crit = s + beta * knn_entropy_gain(rho, n_acq, dim)
        best = int(np.argmax(np.where(alive, crit, -np.inf)))
        chosen.append(best)
        crits.append(float(crit[best]))
        alive[best] = False
        if pids is not None:
            pid = pids[best].item()
            counts[pid] = counts.get(pid, 0) + 1
            if counts[pid] >= max_per_prompt:  # type: ignore[operator]
                alive &= pids != pids[best]
        # the pick joins the acquired set: merge its distance into each candidate's k nearest
        d_new = np.sqrt(np.maximum(np.sum((x - x[best]) ** 2, axis=1), 0.0))
        knn = np.sort(np.concatenate([knn, d_new[:, None]], axis=1), axis=1)[:, :n_neighbors]
        n_acq += 1
    return cand[np.asarray(chosen, dtype=np.int64)], np.asarray(crits)
