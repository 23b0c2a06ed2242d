"""Acquisition scores from the recent literature, adapted to prefloop's fixed pool of pairs.

Like ``scores``, every function takes ``p`` — member k's P_k(a≻b), shape ``[n_pairs, K]`` —
and an optional ``p_tie`` (``[n]`` or ``[n, K]``), and returns one score per pair where
**higher means more worth labelling**. Some also take per-member rewards of the two responses
(``rewards_a``, ``rewards_b``, shape ``[n, K]``); without them the members' reward *gaps*
``d_k = log P_k(a≻b) − log P_k(b≻a)`` (``scores.reward_gaps``) stand in, which is all a pair
needs: it is exact for Bradley-Terry and Davidson members.

* ``delta_ucb`` and ``drts``: ActiveUltraFeedback (Melikidze et al. 2026,
  github.com/lasgroup/ActiveUltraFeedback), which prefer pairs with a large plausible quality gap;
* ``epig``: expected predictive information gain (Bickford Smith et al. 2023);
* ``noise_aware``: BALD that ranks last the pairs whose uncertainty is mostly label noise.

Entropies are in nats. Nothing here imports torch, the store or a backend.
"""

from __future__ import annotations

import numpy as np

from prefloop.acquisition.scores import _entropy_last, _members, bald, outcome_probs, reward_gaps

__all__ = ["aleatoric_mask", "delta_ucb", "drts", "epig", "noise_aware", "reward_posterior"]

_EPS = 1e-12


def reward_posterior(
    p: np.ndarray,
    p_tie: np.ndarray | None = None,
    rewards_a: np.ndarray | None = None,
    rewards_b: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and spread over members of each response's reward: ``(μ_a, σ_a, μ_b, σ_b)``, each ``[n]``.

    With per-member rewards, μ and σ are their mean and (population) standard deviation over
    members. Without them the pair is described by its gap alone: response a carries the gap
    ``(μ_d, σ_d)`` of ``d_k = log P_k(a≻b) − log P_k(b≻a)`` and response b is pinned at
    ``(0, 0)``, so every formula below written in ``μ_a − μ_b`` and ``σ_a + σ_b`` reads
    ``μ_d`` and ``σ_d``.
    """
    if (rewards_a is None) != (rewards_b is None):
        raise ValueError("pass both rewards_a and rewards_b, or neither")
    if rewards_a is not None and rewards_b is not None:
        ra, rb = _members(rewards_a), _members(rewards_b)
        if ra.shape != rb.shape or ra.shape[0] != _members(p).shape[0]:
            raise ValueError(f"rewards_a {ra.shape} and rewards_b {rb.shape} must both be [n_pairs, n_members]")
        return ra.mean(axis=1), ra.std(axis=1), rb.mean(axis=1), rb.std(axis=1)
    d = reward_gaps(p, p_tie)
    zero = np.zeros(d.shape[0])
    return d.mean(axis=1), d.std(axis=1), zero, zero


def delta_ucb(
    p: np.ndarray,
    p_tie: np.ndarray | None = None,
    beta: float = 1.0,
    rewards_a: np.ndarray | None = None,
    rewards_b: np.ndarray | None = None,
) -> np.ndarray:
    """DeltaUCB: the largest gap the pair's rewards could plausibly have.

    ActiveUltraFeedback chooses, among a prompt's responses, the ordered pair (i, j), i ≠ j,
    maximising ``UCB_i − LCB_j`` with bounds ``μ ± β·σ`` (source: the ActiveUltraFeedback code,
    ``activeuf/acquisition_function/deltaucb.py``), and ranks prompts by that maximum. A
    prefloop pair is fixed, so only its orientation is free:

        ``max(UCB_a − LCB_b, UCB_b − LCB_a) = |μ_a − μ_b| + β·(σ_a + σ_b)``

    (``|μ_d| + β·σ_d`` from the members' reward gaps when rewards are not given). It favours
    pairs that are confidently far apart *or* uncertain — good signal for DPO-style training,
    per the paper; whether it helps a reward model is for the benchmark to show.
    """
    mu_a, sd_a, mu_b, sd_b = reward_posterior(p, p_tie, rewards_a, rewards_b)
    return np.abs(mu_a - mu_b) + beta * (sd_a + sd_b)


def drts(
    p: np.ndarray,
    rng: np.random.Generator,
    p_tie: np.ndarray | None = None,
    beta: float = 1.0,
    rewards_a: np.ndarray | None = None,
    rewards_b: np.ndarray | None = None,
) -> np.ndarray:
    """DRTS (Double Reverse Thompson Sampling): the pair's gap under one posterior draw.

    ActiveUltraFeedback draws each response's reward as ``r̃ = μ + β·z·σ`` with
    ``z ~ U(−1, 1)`` (source: the ActiveUltraFeedback code, ``activeuf/acquisition_function/drts.py``,
    class ``DoubleReverseThompsonSampling``), takes the first response as the best under one
    draw and the second as the worst under an independent, reversed draw, and ranks prompts by
    the drawn spread ``max r̃ − min r̃``. A prefloop pair has exactly two responses, so that
    spread is the score:

        ``|r̃_a − r̃_b|,  r̃_a = μ_a + β·z_a·σ_a,  r̃_b = μ_b + β·z_b·σ_b``

    with z_a, z_b drawn independently per pair from ``rng`` (from the reward gaps:
    ``|μ_d + β·z_a·σ_d|``). A randomised DeltaUCB: DeltaUCB is this draw's largest value.
    """
    mu_a, sd_a, mu_b, sd_b = reward_posterior(p, p_tie, rewards_a, rewards_b)
    z = rng.uniform(-1.0, 1.0, size=(mu_a.shape[0], 2))  # two draws per pair whatever the input
    return np.abs((mu_a + beta * z[:, 0] * sd_a) - (mu_b + beta * z[:, 1] * sd_b))


def epig(
    p: np.ndarray,
    p_tie: np.ndarray | None = None,
    n_targets: int | None = 100,
    rng: np.random.Generator | None = None,
    targets: np.ndarray | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """EPIG: expected information a pair's label carries about labels of the pool (Bickford Smith et al. 2023).

    ``EPIG(x) = E_{x*}[ I(y; y* | x, x*) ]`` with the members as posterior samples:

        ``p(y, y*) = (1/K) Σ_k p_k(y | x) p_k(y* | x*)``,
        ``I = Σ_{y, y*} p(y, y*) log[ p(y, y*) / (p(y) p(y*)) ]``,

    over 3 outcomes (a, b, tie) when ``p_tie`` is given, else 2. Unlike BALD, which counts
    information about the parameters, it counts only what changes predictions on the targets
    (so EPIG ≤ BALD: y and y* meet only through the member).
    Targets ``x*`` are pool rows: ``targets`` (indices) if given, otherwise ``n_targets`` rows
    drawn without replacement from ``rng`` (all rows when ``n_targets`` is None or ≥ n); cost
    is ``O(n · n_targets · K · C²)``. Zero for a pair whose members agree; always ≥ 0.
    """
    q = outcome_probs(p, p_tie)  # [n, K, C]
    n = q.shape[0]
    if targets is None:
        if n_targets is None or n_targets >= n:
            targets = np.arange(n)
        else:
            rng = rng if rng is not None else np.random.default_rng(0)
            targets = np.sort(rng.choice(n, size=n_targets, replace=False))
    qt = q[np.asarray(targets, dtype=np.int64)]  # [m, K, C]
    k = q.shape[1]
    marg_t = qt.mean(axis=1)  # [m, C]
    out = np.empty(n)
    for lo in range(0, n, chunk):
        qc = q[lo : lo + chunk]
        joint = np.einsum("nkc,mkd->nmcd", qc, qt) / k  # [chunk, m, C, C]
        indep = qc.mean(axis=1)[:, None, :, None] * marg_t[None, :, None, :]
        ratio = np.clip(joint, _EPS, None) / np.clip(indep, _EPS, None)
        out[lo : lo + chunk] = np.sum(joint * np.log(ratio), axis=(2, 3)).mean(axis=1)
    return np.maximum(out, 0.0)


def aleatoric_mask(
    p: np.ndarray,
    p_tie: np.ndarray | None = None,
    tie_max: float = 0.5,
    min_epistemic_share: float = 0.1,
) -> np.ndarray:
    """Pairs whose uncertainty is mostly label noise, shape ``[n]`` (True = noisy).

    A pair is noisy when the ensemble expects a tie (mean P(tie) ≥ ``tie_max``) or when the
    epistemic part of its uncertainty is a small share of the total:
    ``BALD / H[p̄] < min_epistemic_share``, where ``H[p̄] = BALD + (1/K) Σ_k H[p_k]`` and the
    mean member entropy is the aleatoric part (members all at 0.5 agree that the label is a
    coin flip: share 0). A pair with no uncertainty at all (H = 0) is not noisy.
    """
    q = outcome_probs(p, p_tie)
    total = _entropy_last(q.mean(axis=1))
    epistemic = bald(p, p_tie)
    share = np.divide(epistemic, total, out=np.ones_like(total), where=total > _EPS)
    tie = q[..., 2].mean(axis=1) if q.shape[-1] == 3 else np.zeros(q.shape[0])
    return (tie >= tie_max) | (share < min_epistemic_share)


def noise_aware(
    p: np.ndarray,
    p_tie: np.ndarray | None = None,
    tie_max: float = 0.5,
    min_epistemic_share: float = 0.1,
) -> np.ndarray:
    """BALD, with every pair whose uncertainty is mostly aleatoric ranked after all the others.

    Rule: ``score = BALD`` for a pair not in ``aleatoric_mask`` (likely tie, or epistemic
    share of the entropy below ``min_epistemic_share``); ``score = BALD − 2`` for one that is.
    BALD ∈ [0, log 3] and log 3 < 2, so noisy pairs are taken only when no other pair is left
    — a batch is still filled — and among themselves they keep BALD's order. Labels on such
    pairs mostly teach the model that humans split, which it already predicts.
    """
    score = bald(p, p_tie)
    return np.where(aleatoric_mask(p, p_tie, tie_max, min_epistemic_share), score - 2.0, score)
