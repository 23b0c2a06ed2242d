"""How much of the model's preference is response length: residual gaps and length-following pairs.

A reward model trained on human preferences learns "the longer (or shorter) answer wins" first,
and its ensemble is then *confident* exactly where length decides, so an uncertainty score
never asks for the pairs that would teach it otherwise. These numpy functions separate the
part of the reward gap that length explains from the rest:

- ``length_gap(len_a, len_b)`` = ``log(1 + chars_a) − log(1 + chars_b)``, the regressor Δ;
- ``length_residual(gaps, dlen)`` fits, on the pool, the 1-D least squares ``gap ≈ β·Δ``
  (no intercept: swapping a and b flips both sides, so the fit must too) and returns the
  residual ``gap − β·Δ`` and β; ``per_member=True`` fits one β per ensemble member;
- ``follows_length(mean_gap, dlen, slope)``: the model prefers the side the fitted length
  rule prefers (the longer one when β > 0, the shorter one when β < 0);
  ``against_length`` the opposite. Pairs of near-equal length (relative difference at most
  ``NEAR_EQUAL``) are in neither: length says nothing about them.

Nothing here imports torch, the store or a backend.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NEAR_EQUAL",
    "against_length",
    "follows_length",
    "length_decides",
    "length_gap",
    "length_residual",
    "residual_probs",
]

#: relative length difference |a − b| / max(a, b) at or below which a pair is "near equal"
#: (the same bin as the length groups of evaluation, ``prefloop.model.length_groups``)
NEAR_EQUAL = 0.10


def length_gap(len_a: np.ndarray, len_b: np.ndarray) -> np.ndarray:
    """Δ = log(1 + len_a) − log(1 + len_b) per pair (lengths in characters); > 0: a is longer."""
    la, lb = np.asarray(len_a, dtype=np.float64), np.asarray(len_b, dtype=np.float64)
    if la.shape != lb.shape or la.ndim != 1:
        raise ValueError(f"len_a and len_b must be 1-D arrays of one length, got {la.shape} and {lb.shape}")
    if (la < 0).any() or (lb < 0).any():
        raise ValueError("response lengths must be non-negative character counts")
    return np.log1p(la) - np.log1p(lb)


def length_decides(len_a: np.ndarray, len_b: np.ndarray, near_equal: float = NEAR_EQUAL) -> np.ndarray:
    """True where the two responses differ in length by more than ``near_equal`` (relative)."""
    la, lb = np.asarray(len_a, dtype=np.float64), np.asarray(len_b, dtype=np.float64)
    return np.abs(la - lb) / np.maximum(np.maximum(la, lb), 1.0) > near_equal


def length_residual(gaps: np.ndarray, dlen: np.ndarray, per_member: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(residual, slope)``: the reward gap with its least-squares length part removed.

    ``gaps`` ``[n]`` or ``[n, K]`` (a member's r_a − r_b per column), ``dlen`` ``[n]`` (from
    ``length_gap``). By default one slope β is fitted to the members' mean gap and removed from
    every member, so the members' disagreement is kept as it was; ``per_member`` fits and
    removes one β_k per member (its own length reliance). ``slope`` is ``[1]`` or ``[K]``.
    With no length difference at all in the pool, β = 0 and the gaps come back unchanged.
    """
    g = np.asarray(gaps, dtype=np.float64)
    one = g.ndim == 1
    g = g[:, None] if one else g
    x = np.asarray(dlen, dtype=np.float64)
    if g.ndim != 2 or x.shape != (g.shape[0],):
        raise ValueError(f"gaps must be [n] or [n, K] and dlen [n]; got {np.shape(gaps)} and {x.shape}")
    target = g if per_member else g.mean(axis=1, keepdims=True)
    ok = np.isfinite(target).all(axis=1) & np.isfinite(x)
    xx = float(x[ok] @ x[ok])
    slope = (x[ok] @ target[ok]) / xx if xx > 0 else np.zeros(target.shape[1])
    residual = g - x[:, None] * slope[None, :]
    return (residual[:, 0] if one else residual), np.atleast_1d(slope)


def residual_probs(p: np.ndarray, p_tie: np.ndarray | None, residual: np.ndarray) -> np.ndarray:
    """P(a≻b) per member whose implied gap is ``residual``, P(tie) unchanged.

    With ties the decisive mass ``1 − P(tie)`` is split by the residual gap, so
    ``log P(a≻b) − log P(b≻a)`` of the result is exactly ``residual``.
    """
    pm = np.asarray(p, dtype=np.float64)
    pm = pm[:, None] if pm.ndim == 1 else pm
    decisive = np.ones_like(pm)
    if p_tie is not None:
        t = np.asarray(p_tie, dtype=np.float64)
        decisive = 1.0 - np.broadcast_to(np.clip(t[:, None] if t.ndim == 1 else t, 0.0, 1.0), pm.shape)
    r = np.asarray(residual, dtype=np.float64).reshape(pm.shape)
    return decisive / (1.0 + np.exp(-r))


def _rule_side(dlen: np.ndarray, slope: float, decides: np.ndarray) -> np.ndarray:
    """+1 where the length rule of slope β prefers a, −1 where b, 0 where it says nothing."""
    side = np.sign(np.asarray(dlen, dtype=np.float64) * float(slope))
    return np.where(decides, side, 0.0)


def follows_length(
    mean_gap: np.ndarray, dlen: np.ndarray, slope: float, decides: np.ndarray | None = None
) -> np.ndarray:
    """True where the model's preferred side (sign of the mean gap) is the one the length rule prefers.

    The rule's direction is the sign of the fitted slope: a model that leans to longer answers
    (β > 0) follows length where it prefers the longer response, one that leans to shorter
    answers (β < 0) where it prefers the shorter one. ``decides`` (default: every pair with
    Δ ≠ 0) masks out pairs of near-equal length; β = 0 means no pair follows length.
    """
    d = np.asarray(mean_gap, dtype=np.float64)
    mask = np.asarray(dlen) != 0 if decides is None else np.asarray(decides, dtype=bool)
    rule = _rule_side(dlen, slope, mask)
    return (rule != 0) & (np.sign(d) == rule)


def against_length(
    mean_gap: np.ndarray, dlen: np.ndarray, slope: float, decides: np.ndarray | None = None
) -> np.ndarray:
    """True where the model prefers the side the length rule does not (see ``follows_length``)."""
    d = np.asarray(mean_gap, dtype=np.float64)
    mask = np.asarray(dlen) != 0 if decides is None else np.asarray(decides, dtype=bool)
    rule = _rule_side(dlen, slope, mask)
    return (rule != 0) & (np.sign(d) == -rule)
