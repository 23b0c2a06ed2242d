"""Bradley-Terry likelihood with ties (Davidson or Rao-Kupper), in torch and numpy.

With rewards r_a, r_b and gap d = r_a − r_b:

- Bradley-Terry ('none'):  P(a≻b) = σ(d), no tie mass; a tie label counts half a win each.
- Davidson ('davidson'), tie parameter ν = exp(θ) > 0 learned:
      P(a≻b) = e^{r_a} / (e^{r_a} + e^{r_b} + ν e^{(r_a+r_b)/2})
      P(b≻a) = e^{r_b} / (same),   P(tie) = ν e^{(r_a+r_b)/2} / (same)
  i.e. a softmax over the logits (d/2, −d/2, log ν).
- Rao-Kupper ('rao_kupper'), threshold η = softplus(θ) ≥ 0 learned:
      P(a≻b) = σ(d − η),  P(b≻a) = σ(−d − η),  P(tie) = 1 − P(a≻b) − P(b≻a).

Margin (from label strength m ≥ 0): a label "a wins" is scored with d − m and "b wins" with
d + m, so the model must beat the margin (Llama-2 style); prediction uses m = 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from prefloop.errors import ModelError

__all__ = ["MIN_TIE_SHARE", "log_probs", "pair_nll", "probs_numpy", "tie_param_init", "tie_share"]

_EPS = 1e-12


MIN_TIE_SHARE = 0.01  # labels with no tie at all start at 1 % ties (θ finite), not at −∞


def tie_param_init(tie_model: str, share: float | None = None) -> float:
    """Raw tie parameter θ at start.

    Without ``share``: ν = 1 for Davidson (P(tie) = 1/3 at d = 0), η ≈ 0.5 for Rao-Kupper.
    With it (the share of tie weight in the training labels, floored at ``MIN_TIE_SHARE``): the θ
    whose P(tie) at d = 0 is that share — Davidson ν = 2τ / (1 − τ), Rao-Kupper
    η = log((1 + τ) / (1 − τ)). A head that started at P(tie) = 1/3 on labels without ties kept
    most of it (θ moved 0.02 in a heads-mode training on HH), and the 3-way likelihood then
    paid for ties no label had, by pushing gaps apart (sharper, overconfident probabilities).
    """
    if share is None:
        return 0.0 if tie_model == "davidson" else math.log(math.expm1(0.5))
    tau = min(max(float(share), MIN_TIE_SHARE), 0.9)
    if tie_model == "davidson":
        return math.log(2 * tau / (1 - tau))
    return math.log(math.expm1(math.log((1 + tau) / (1 - tau))))


def tie_share(wins: np.ndarray) -> float:
    """Share of the label weight [n, 3] (a wins, b wins, tie) that is on ties."""
    wins = np.asarray(wins, dtype=np.float64)
    total = float(wins.sum())
    return float(wins[:, 2].sum()) / total if total > 0 else 0.0


def log_probs(d: torch.Tensor, theta: torch.Tensor, tie_model: str) -> torch.Tensor:
    """[n, 3] log (P(a≻b), P(b≻a), P(tie)) for reward gaps ``d`` [n] and raw tie parameter θ."""
    if tie_model == "davidson":
        logits = torch.stack([d / 2, -d / 2, theta.expand_as(d)], dim=-1)
        return F.log_softmax(logits, dim=-1)
    if tie_model == "rao_kupper":
        eta = F.softplus(theta)
        la = F.logsigmoid(d - eta)
        lb = F.logsigmoid(-d - eta)
        lt = torch.log(torch.clamp(1 - la.exp() - lb.exp(), min=_EPS))
        return torch.stack([la, lb, lt], dim=-1)
    if tie_model == "none":
        la, lb = F.logsigmoid(d), F.logsigmoid(-d)
        return torch.stack([la, lb, torch.full_like(d, -math.inf)], dim=-1)
    raise ModelError(f"unknown tie_model {tie_model!r}; use 'davidson', 'rao_kupper' or 'none' ([model] tie_model)")


def pair_nll(
    d: torch.Tensor,
    wins: torch.Tensor,
    theta: torch.Tensor,
    tie_model: str,
    margin: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted mean negative log-likelihood of the labels.

    ``wins`` [n, 3] holds the summed label weights (a wins, b wins, tie) of each pair; the
    result is Σ −w·log P / Σ w, so a pair labelled by three annotators counts three times.
    """
    wins = wins.to(d.dtype)
    if tie_model == "none":  # a tie is half a win for each side
        wins = torch.stack([wins[:, 0] + wins[:, 2] / 2, wins[:, 1] + wins[:, 2] / 2], dim=-1)
        m = torch.zeros_like(d) if margin is None else margin.to(d.dtype)
        ll = wins[:, 0] * F.logsigmoid(d - m) + wins[:, 1] * F.logsigmoid(-d - m)
        return -ll.sum() / wins.sum().clamp(min=_EPS)
    if margin is None or not bool(torch.any(margin != 0)):
        lp = log_probs(d, theta, tie_model)
        ll = (wins * lp).sum(-1)
    else:
        m = margin.to(d.dtype)
        ll = (
            wins[:, 0] * log_probs(d - m, theta, tie_model)[:, 0]
            + wins[:, 1] * log_probs(d + m, theta, tie_model)[:, 1]
            + wins[:, 2] * log_probs(d, theta, tie_model)[:, 2]
        )
    return -ll.sum() / wins.sum().clamp(min=_EPS)


def probs_numpy(d: np.ndarray, theta: float | np.ndarray, tie_model: str) -> np.ndarray:
    """(P(a≻b), P(b≻a), P(tie)) stacked on a new last axis, for any shape of ``d``."""
    d = np.asarray(d, dtype=np.float64)
    theta = np.broadcast_to(np.asarray(theta, dtype=np.float64), d.shape)
    if tie_model == "davidson":
        logits = np.stack([d / 2, -d / 2, theta], axis=-1)
        logits -= logits.max(axis=-1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=-1, keepdims=True)
    if tie_model == "rao_kupper":
        eta = np.logaddexp(0.0, theta)
        pa = 1 / (1 + np.exp(-(d - eta)))
        pb = 1 / (1 + np.exp(-(-d - eta)))
        return np.stack([pa, pb, np.clip(1 - pa - pb, 0.0, 1.0)], axis=-1)
    pa = 1 / (1 + np.exp(-d))
    return np.stack([pa, 1 - pa, np.zeros_like(d)], axis=-1)
