"""Length debiasing: the losses and the label reweighting behind ``debias = "length"``.

A reward model trained on HH harmless learns "shorter wins" (held-out reward–length r ≈ −0.5);
one trained on HH helpful learns the opposite. Three ways to keep length out of the reward:

- **odin** (Chen et al. 2024, "ODIN: Disentangled Reward Mitigates Hacking in RLHF"): the head
  has two outputs, a quality reward r_Q and a length reward r_L. The likelihood sees
  r = r_Q + r_L, and penalties push length into r_L and out of r_Q::

      loss = NLL(d = r_a − r_b) + λ·(1 − |ρ(r_L, len)|) + λ·|ρ(r_Q, len)| + λ·|cos(w_Q, w_L)|

  ρ is the Pearson correlation over the batch's responses (a and b of every pair), ``len`` the
  response's character count (the quantity ``eval`` correlates rewards with), and w_Q, w_L
  the two rows of the head's last linear layer. At inference the reward is r_Q alone.
- **conditioned** (a product of experts / covariate adjustment): the likelihood sees
  d = (r_a − r_b) + β·(ℓ_a − ℓ_b) with ℓ = log(1 + characters); the length expert β·ℓ explains
  what length explains, and is dropped at inference. β is fitted FIRST, on length alone
  (``fit_length_expert``), and then held fixed while the reward trains — the bias-only expert
  of Clark et al. 2019 ("Don't Take the Easy Way Out"). Learned jointly from β = 0 it did
  nothing: the reward's hundreds of weights pick up length long before one scalar does, and
  then β has no gradient left (HH harmless halves, heads mode: r −0.475 against −0.477 without
  debiasing; docs/benchmarks.md).
- **balanced**: no change to the model; the labels are reweighted so that, within bins of the
  length ratio |ℓ_a − ℓ_b|, labels where the longer response wins and labels where the shorter
  one wins carry equal total weight (each bin keeps its total weight).

Everything here is a pure function of tensors or arrays (hand-checked in
``tests/model/test_debias.py``); ``debias_heads.py`` puts them into the heads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from prefloop.model.data import PairTargets
from prefloop.model.evaluate import pair_lengths

__all__ = [
    "DEBIAS_METHODS",
    "balance_by_length",
    "conditioned_gap",
    "fit_length_expert",
    "heads_balanced",
    "length_balanced",
    "log_length",
    "odin_penalty",
    "pearson",
]

#: debias_method values; the first is the default (chosen by benchmarks/bench_length_robust.py, #23)
DEBIAS_METHODS = ("project_balanced", "project", "odin", "conditioned", "balanced")

_EPS = 1e-8


def heads_balanced(config: Any) -> bool:
    """Adapted mode with 'project_balanced': the K heads train on length-balanced label weights
    (``balance_by_length``) while the backbone is fine-tuned on the plain labels."""
    return config.mode == "adapted" and config.debias == "length" and config.debias_method == "project_balanced"


def log_length(chars: torch.Tensor) -> torch.Tensor:
    """ℓ = log(1 + characters): a length ratio, not a length difference, moves the preference."""
    return torch.log1p(chars)


def pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of two 1-D tensors, differentiable; 0 when either is constant."""
    xc, yc = x - x.mean(), y - y.mean()
    return (xc * yc).sum() / torch.sqrt((xc * xc).sum() * (yc * yc).sum() + _EPS)


def odin_penalty(
    r_quality: torch.Tensor,
    r_length: torch.Tensor,
    length: torch.Tensor,
    w_quality: torch.Tensor,
    w_length: torch.Tensor,
    weight: float,
) -> torch.Tensor:
    """ODIN's three penalties, summed and scaled by ``weight`` (λ).

    ``r_quality``, ``r_length``, ``length``: one value per response of the batch. The length
    head is rewarded for |ρ| (either sign: on harmlessness data length lowers the reward),
    the quality head for ρ ≈ 0, and the two weight vectors for being orthogonal (absolute
    cosine, so shrinking the weights cannot satisfy it).
    """
    length = length.to(r_quality.dtype)
    cos = (w_quality * w_length).sum() / (w_quality.norm() * w_length.norm() + _EPS)
    terms = (1 - pearson(r_length, length).abs()) + pearson(r_quality, length).abs() + cos.abs()
    return weight * terms


def conditioned_gap(d: torch.Tensor, beta: torch.Tensor, len_a: torch.Tensor, len_b: torch.Tensor) -> torch.Tensor:
    """The training gap d + β·(ℓ_a − ℓ_b) of the length-conditioned likelihood (ℓ = log(1 + chars))."""
    return d + beta * (log_length(len_a.to(d.dtype)) - log_length(len_b.to(d.dtype)))


def fit_length_expert(wins: np.ndarray, len_a: np.ndarray, len_b: np.ndarray, tie_model: str, steps: int = 50) -> float:
    """β of the length-only model P(label) = BT(β·(ℓ_a − ℓ_b)) (its own tie parameter), by maximum likelihood.

    Two parameters, a convex problem (for Bradley-Terry and Davidson): L-BFGS converges in a
    few steps. 0 when there are no labels or no length differences.
    """
    from prefloop.model.losses import pair_nll, tie_param_init

    w = torch.as_tensor(np.asarray(wins, dtype=np.float64))
    dl = log_length(torch.as_tensor(np.asarray(len_a, dtype=np.float64))) - log_length(
        torch.as_tensor(np.asarray(len_b, dtype=np.float64))
    )
    if len(w) == 0 or float(w.sum()) <= 0 or not bool((dl != 0).any()):
        return 0.0
    beta = torch.zeros((), dtype=torch.float64, requires_grad=True)
    theta = torch.tensor(tie_param_init(tie_model), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([beta, theta], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = pair_nll(beta * dl, w, theta, tie_model)
        loss.backward()
        return loss

    opt.step(closure)
    return float(beta.detach())


def length_balanced(targets: PairTargets) -> PairTargets:
    """A copy of ``targets`` whose label weights are balanced by length group (``balance_by_length``)."""
    out = targets.subset(np.arange(len(targets)))
    out.wins = balance_by_length(out.wins, *pair_lengths(out.pairs))
    return out


def balance_by_length(wins: np.ndarray, len_a: np.ndarray, len_b: np.ndarray, n_bins: int = 4) -> np.ndarray:
    """Label weights [n, 3] where longer-wins and shorter-wins labels weigh the same per bin.

    Bins are quantiles of |log(1 + len_a) − log(1 + len_b)| over the pairs of unequal
    length. In a bin whose longer-wins weight is L and shorter-wins weight S (both > 0), the
    longer-wins labels are scaled by (L + S)/(2L) and the shorter-wins ones by (L + S)/(2S):
    both become (L + S)/2 and the bin's total is kept. Ties, equal lengths and bins with only
    one side are left as they are.
    """
    wins = np.asarray(wins, dtype=np.float64)
    out = wins.copy()
    la, lb = np.log1p(np.asarray(len_a, float)), np.log1p(np.asarray(len_b, float))
    gap = np.abs(la - lb)
    unequal = la != lb
    if not unequal.any():
        return out
    edges = np.quantile(gap[unequal], np.linspace(0, 1, n_bins + 1)[1:-1])
    bins = np.searchsorted(edges, gap, side="right")
    a_longer = la > lb
    longer_col = np.where(a_longer, 0, 1)
    rows = np.arange(len(wins))
    longer_w = wins[rows, longer_col]
    shorter_w = wins[rows, 1 - longer_col]
    for b in np.unique(bins[unequal]):
        sel = unequal & (bins == b)
        big, small = longer_w[sel].sum(), shorter_w[sel].sum()
        if big <= 0 or small <= 0:
            continue
        half = (big + small) / 2
        out[rows[sel], longer_col[sel]] = longer_w[sel] * half / big
        out[rows[sel], 1 - longer_col[sel]] = shorter_w[sel] * half / small
    return out
