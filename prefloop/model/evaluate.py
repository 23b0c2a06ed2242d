"""Metrics of preference predictions, numpy only (pure functions of arrays).

Labels are ``Choice`` values or their strings ('a', 'b', 'tie', 'skip'); skips are ignored.
Definitions (each checked against hand-computed values in tests/model/test_evaluate.py):

- ``accuracy``: over decisive labels (ties excluded), predicted winner = larger of P(a≻b), P(b≻a).
- ``tie_aware_accuracy``: over decisive and tie labels, prediction = argmax of the three
  probabilities (equals ``accuracy`` when no tie label and no P(tie) is given).
- ``log_loss``: mean −log P(winner | not a tie) over decisive labels, where
  P(a | not tie) = P(a≻b) / (P(a≻b) + P(b≻a)), comparable with a plain Bradley-Terry model.
- ``log_loss_3way``: mean −log P(label) over decisive and tie labels (needs ``p_tie``).
- ``ece``: expected calibration error with ``n_bins`` equal-width bins over BOTH orientations
  of each decisive pair: (q, y) and (1 − q, 1 − y), q = P(a | not tie), y = 1 if a won.
- ``length_corr`` / ``length_spearman``: Pearson / Spearman correlation between reward and
  length over every response (a and b of each pair).
- ``acc_preferred_shorter`` / ``acc_preferred_longer``: accuracy on decisive pairs whose
  preferred response is the shorter / longer one (equal lengths excluded).
- ``length_groups``: accuracy by length group (chosen longer / chosen shorter / near-equal),
  the worst group and ``length_bias_flag``, with bootstrap intervals
  (``prefloop.model.length_groups.group_metrics``; None without lengths).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from prefloop.model.length_groups import group_metrics

__all__ = ["calibration_bins", "evaluate_prediction", "evaluate_predictions", "label_codes", "pair_lengths", "spearman"]

_CODES = {"a": 0, "b": 1, "tie": 2, "skip": -1}


def label_codes(labels: Sequence[Any]) -> np.ndarray:
    """'a' → 0, 'b' → 1, 'tie' → 2, 'skip'/None → −1 (accepts Choice values too)."""
    out = []
    for lab in labels:
        if lab is None:
            out.append(-1)
            continue
        out.append(_CODES[str(getattr(lab, "value", lab)).lower()])
    return np.asarray(out, dtype=np.int64)


def pair_lengths(pairs: Sequence[tuple[str, str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Character lengths of responses a and b."""
    return (
        np.array([len(p[1]) for p in pairs], dtype=np.float64),
        np.array([len(p[2]) for p in pairs], dtype=np.float64),
    )


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    # average the ranks of equal values
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return sums[inv] / counts[inv]


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation (average ranks for ties)."""
    return _pearson(_ranks(np.asarray(x, float)), _ranks(np.asarray(y, float)))


def calibration_bins(q: np.ndarray, y: np.ndarray, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Equal-width bins of confidence ``q`` with outcome ``y``: count, mean q, mean y per bin."""
    idx = np.clip((q * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    conf = np.bincount(idx, weights=q, minlength=n_bins)
    acc = np.bincount(idx, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"count": count, "confidence": conf / count, "accuracy": acc / count}


def _both_orientations(q: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([q, 1 - q]), np.concatenate([y, 1 - y])


def evaluate_predictions(
    p_a: np.ndarray,
    labels: Sequence[Any],
    p_tie: np.ndarray | None = None,
    p_b: np.ndarray | None = None,
    reward_a: np.ndarray | None = None,
    reward_b: np.ndarray | None = None,
    len_a: np.ndarray | None = None,
    len_b: np.ndarray | None = None,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Metrics dict with at least ``accuracy``, ``log_loss``, ``ece``, ``n``, ``length_corr``.

    ``p_b`` defaults to 1 − p_a − p_tie. Length metrics need the lengths (and rewards for
    the correlations); they are None otherwise.
    """
    p_a = np.asarray(p_a, dtype=np.float64)
    p_t = np.zeros_like(p_a) if p_tie is None else np.asarray(p_tie, dtype=np.float64)
    p_b = 1 - p_a - p_t if p_b is None else np.asarray(p_b, dtype=np.float64)
    code = label_codes(labels)
    used = code >= 0
    dec = (code == 0) | (code == 1)
    eps = 1e-12
    q = p_a / np.clip(p_a + p_b, eps, None)  # P(a | not tie)
    y = (code == 0).astype(np.float64)
    correct = (p_a > p_b) == (code == 0)
    probs3 = np.stack([p_a, p_b, p_t], axis=1)
    out: dict[str, Any] = {
        "n": int(used.sum()),
        "n_decisive": int(dec.sum()),
        "n_ties": int((code == 2).sum()),
        "accuracy": float(correct[dec].mean()) if dec.any() else None,
        "tie_aware_accuracy": float((probs3[used].argmax(1) == code[used]).mean()) if used.any() else None,
        "log_loss": None,
        "log_loss_3way": None,
        "ece": None,
    }
    if dec.any():
        pw = np.where(code[dec] == 0, q[dec], 1 - q[dec])
        out["log_loss"] = float(-np.log(np.clip(pw, eps, 1)).mean())
        qq, yy = _both_orientations(q[dec], y[dec])
        bins = calibration_bins(qq, yy, n_bins)
        nz = bins["count"] > 0
        gaps = np.abs(bins["accuracy"][nz] - bins["confidence"][nz])
        out["ece"] = float((bins["count"][nz] * gaps).sum() / bins["count"].sum())
    if p_tie is not None and used.any():
        pl = probs3[used, code[used]]
        out["log_loss_3way"] = float(-np.log(np.clip(pl, eps, 1)).mean())
    out.update(_length_metrics(code, correct, reward_a, reward_b, len_a, len_b))
    out["length_groups"] = None
    if len_a is not None and len_b is not None:
        # y: 1 a won, 0 b won, 0.5 tie (no group); skips are left out as everywhere else
        y = np.where(code == 0, 1.0, np.where(code == 1, 0.0, 0.5))
        la, lb = np.asarray(len_a, float), np.asarray(len_b, float)
        out["length_groups"] = group_metrics(q[used], y[used], la[used], lb[used])
    return out


def evaluate_prediction(
    pred: Any, pairs: Sequence[tuple[str, str, str]], labels: Sequence[Any]
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Every metric of one ensemble prediction of ``pairs`` (length metrics included), and (len_a, len_b).

    ``pred`` is what ``RewardEnsemble.predict(pairs)`` returned (``p_a``, ``p_b``, ``p_tie``,
    ``reward_a``, ``reward_b``).
    """
    len_a, len_b = pair_lengths(pairs)
    metrics = evaluate_predictions(
        pred.p_a,
        labels,
        p_tie=pred.p_tie,
        p_b=pred.p_b,
        reward_a=pred.reward_a,
        reward_b=pred.reward_b,
        len_a=len_a,
        len_b=len_b,
    )
    return metrics, len_a, len_b


def _length_metrics(
    code: np.ndarray,
    correct: np.ndarray,
    reward_a: np.ndarray | None,
    reward_b: np.ndarray | None,
    len_a: np.ndarray | None,
    len_b: np.ndarray | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "length_corr": None,
        "length_spearman": None,
        "acc_preferred_shorter": None,
        "acc_preferred_longer": None,
        "n_preferred_shorter": 0,
        "n_preferred_longer": 0,
    }
    if len_a is None or len_b is None:
        return out
    la, lb = np.asarray(len_a, float), np.asarray(len_b, float)
    if reward_a is not None and reward_b is not None:
        r = np.concatenate([np.asarray(reward_a, float), np.asarray(reward_b, float)])
        length = np.concatenate([la, lb])
        out["length_corr"] = _pearson(r, length)
        out["length_spearman"] = spearman(r, length)
    win_len = np.where(code == 0, la, lb)
    lose_len = np.where(code == 0, lb, la)
    dec = (code == 0) | (code == 1)
    shorter = dec & (win_len < lose_len)
    longer = dec & (win_len > lose_len)
    out["n_preferred_shorter"] = int(shorter.sum())
    out["n_preferred_longer"] = int(longer.sum())
    if shorter.any():
        out["acc_preferred_shorter"] = float(correct[shorter].mean())
    if longer.any():
        out["acc_preferred_longer"] = float(correct[longer].mean())
    return out
