"""Turning scores into a batch: top-k, per-prompt caps, exclusions and diversity.

All functions are numpy-only and return indices into the pool. Exclusions (pairs already
labelled or pending at any backend) always hold: an excluded index is never returned, even
when that makes the batch smaller than ``k``.

Diversity (``diverse_select``) runs on a shortlist — the top ``M`` candidates by score — so
its cost is ``O(M·k·d)`` whatever the pool size; only the shortlist's embedding rows are
read (``embeddings`` may be a ``np.memmap``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from prefloop.errors import StrategyError

__all__ = [
    "apply_prompt_cap",
    "diverse_select",
    "exclusion_mask",
    "shortlist",
    "top_k",
]


def exclusion_mask(n: int, exclude: np.ndarray | None) -> np.ndarray:
    """Boolean mask ``[n]`` (True = excluded) from either a boolean mask or an index array."""
    mask = np.zeros(n, dtype=bool)
    if exclude is None:
        return mask
    ex = np.asarray(exclude)
    if ex.dtype == bool:
        if ex.shape != (n,):
            raise ValueError(f"exclude mask must have shape ({n},), got {ex.shape}")
        return ex.copy()
    if ex.size:
        mask[ex.astype(np.int64, copy=False)] = True
    return mask


def _ranked(scores: np.ndarray, m: int, excluded: np.ndarray) -> np.ndarray:
    """Indices of the ``m`` best non-excluded scores, best first; NaN counts as the worst score.

    Ties are broken by the lower index, so the result is deterministic.
    """
    s = np.where(np.isnan(scores), -np.inf, scores).astype(np.float64, copy=False)
    allowed = np.flatnonzero(~excluded) if excluded.any() else None
    values = s if allowed is None else s[allowed]
    m = min(m, values.size)
    if m <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-values, m - 1)[:m] if m < values.size else np.arange(values.size)
    order = part[np.lexsort((part, -values[part]))]
    return order if allowed is None else allowed[order]


def apply_prompt_cap(order: np.ndarray, prompt_ids: np.ndarray, max_per_prompt: int) -> np.ndarray:
    """Keep candidates in ``order`` while their prompt has fewer than ``max_per_prompt`` kept.

    ``order`` is a ranking (best first); the result is the sub-ranking that respects the cap.
    """
    if max_per_prompt < 1:
        raise StrategyError(f"max_per_prompt must be at least 1, got {max_per_prompt}")
    order = np.asarray(order, dtype=np.int64)
    if order.size == 0:
        return order
    pid = np.asarray(prompt_ids)[order]
    _, inverse = np.unique(pid, return_inverse=True)
    # rank of each candidate within its prompt, in ranking order (stable sort keeps it)
    by_prompt = np.argsort(inverse, kind="stable")
    sorted_ids = inverse[by_prompt]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_ids)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, sorted_ids.size]))
    rank = np.empty_like(by_prompt)
    rank[by_prompt] = np.arange(sorted_ids.size) - run_start
    return order[rank < max_per_prompt]


def top_k(
    scores: np.ndarray,
    k: int,
    exclude: np.ndarray | None = None,
    prompt_ids: np.ndarray | None = None,
    max_per_prompt: int | None = None,
) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first, skipping ``exclude`` (mask or indices).

    With ``prompt_ids`` and ``max_per_prompt`` no prompt contributes more than the cap; the
    next-best pairs of other prompts fill the batch. ``O(n)`` via ``np.argpartition``.
    """
    scores = np.asarray(scores)
    excluded = exclusion_mask(scores.shape[0], exclude)
    if max_per_prompt is None or prompt_ids is None:
        return _ranked(scores, k, excluded)
    # a cap can discard candidates: widen the ranked window until k survive or the pool ends
    m = min(scores.shape[0], 2 * k + max_per_prompt)
    while True:
        kept = apply_prompt_cap(_ranked(scores, m, excluded), prompt_ids, max_per_prompt)
        if kept.size >= k or m >= scores.shape[0]:
            return kept[:k]
        m = min(scores.shape[0], 4 * m)


def shortlist(scores: np.ndarray, size: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """The ``size`` best non-excluded candidates by score, best first (the diversity stage's input)."""
    scores = np.asarray(scores)
    return _ranked(scores, size, exclusion_mask(scores.shape[0], exclude))


def _sq_dist(x: np.ndarray, centre: np.ndarray, x_sq: np.ndarray) -> np.ndarray:
    d = x_sq - 2.0 * (x @ centre) + float(centre @ centre)
    return np.maximum(d, 0.0)


def diverse_select(
    embeddings: np.ndarray,
    candidates: np.ndarray,
    k: int,
    scores: np.ndarray | None = None,
    method: Literal["kcenter", "kmeanspp"] = "kcenter",
    score_weight: float = 0.0,
    prompt_ids: np.ndarray | None = None,
    max_per_prompt: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Pick ``k`` of ``candidates`` (pool indices, best first) spread out in embedding space.

    * ``kcenter`` (Sener & Savarese 2018): start from the best-scored candidate, then
      repeatedly add the candidate farthest (Euclidean) from everything chosen so far;
    * ``kmeanspp``: like k-means++ seeding (BADGE-style): draw the next candidate with
      probability ∝ its squared distance to the chosen set.

    ``score_weight`` w > 0 trades spread for informativeness: the criterion becomes
    ``dist · s^w`` with s the candidate's score rescaled to (0, 1] within the shortlist.
    Per-prompt caps hold throughout (a full prompt's other candidates are dropped).
    Returns at most ``k`` pool indices in the order they were chosen.
    """
    cand = np.asarray(candidates, dtype=np.int64)
    k = min(k, cand.size)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    rng = rng if rng is not None else np.random.default_rng(0)
    x = np.asarray(embeddings[np.sort(cand)], dtype=np.float64)  # sorted reads suit a memmap
    x = x[np.argsort(np.argsort(cand))]  # back to the candidates' order
    x_sq = np.einsum("ij,ij->i", x, x)
    weight: np.ndarray = np.ones(cand.size)
    if score_weight > 0 and scores is not None:
        s = np.asarray(scores, dtype=np.float64)[cand]
        lo, hi = np.nanmin(s), np.nanmax(s)
        scaled = (s - lo) / (hi - lo) if hi > lo else np.ones_like(s)
        weight = np.clip(np.nan_to_num(scaled), 1e-3, 1.0) ** score_weight
    pids = None if prompt_ids is None or max_per_prompt is None else np.asarray(prompt_ids)[cand]
    counts: dict[object, int] = {}
    alive = np.ones(cand.size, dtype=bool)
    min_d = np.full(cand.size, np.inf)
    chosen: list[int] = []
    nxt = 0  # candidates are best-first: the first pick is the best-scored one
    for _ in range(k):
        chosen.append(nxt)
        alive[nxt] = False
        if pids is not None:
            pid = pids[nxt].item()
            counts[pid] = counts.get(pid, 0) + 1
            if counts[pid] >= max_per_prompt:  # type: ignore[operator]
                alive &= pids != pids[nxt]
        if not alive.any():
            break
        min_d = np.minimum(min_d, _sq_dist(x, x[nxt], x_sq))
        crit = np.where(alive, min_d, -np.inf)
        if method == "kcenter":
            nxt = int(np.argmax(np.where(alive, np.sqrt(np.maximum(crit, 0.0)) * weight, -np.inf)))
        elif method == "kmeanspp":
            cum = np.cumsum(np.where(alive, np.maximum(crit, 0.0) * weight**2, 0.0))
            if cum[-1] > 0:  # inverse-CDF draw; cheaper than rng.choice(p=...) which re-validates p
                nxt = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), cand.size - 1)
            else:
                nxt = int(np.flatnonzero(alive)[0])
        else:
            raise StrategyError(f"unknown diversity method {method!r}; use 'kcenter' or 'kmeanspp'")
    return cand[np.asarray(chosen, dtype=np.int64)]
