"""Accuracy by length group and the worst group, with bootstrap intervals (numpy only).

A reward model that has learned "the longer (or shorter) answer wins" can score well overall
and still be worse than a coin on the pairs where the human chose the other way. Overall
accuracy hides that; the accuracy of the *worst* length group shows it.

Groups of a decisive pair (``y`` = 1.0: a preferred, 0.0: b preferred), lengths in characters
of the two response texts (``prefloop.model.evaluate.pair_lengths``):

- ``near_equal``: ``|len_a − len_b| / max(len_a, len_b, 1) <= NEAR_EQUAL``;
- otherwise ``chosen_longer`` / ``chosen_shorter``: the preferred response is the longer /
  shorter one.

Ties (``y`` = 0.5, or any value other than 0 and 1) belong to no group (``"tie"``). A pair is
right when ``(q > 0.5) == (y == 1)``, ``q`` = P(a ≻ b). Intervals are percentile bootstrap
intervals (95 %) over the pairs of each group; the worst group's interval bootstraps the
minimum over the eligible groups (those with at least ``MIN_GROUP`` pairs), each group resampled
on its own. Groups smaller than ``MIN_GROUP`` are reported but can be neither the worst group
nor raise the flag.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GROUPS", "MIN_GROUP", "NEAR_EQUAL", "assign_groups", "flat_group_metrics", "group_metrics"]

GROUPS = ("chosen_longer", "chosen_shorter", "near_equal")
NEAR_EQUAL = 0.10  # a pair is near_equal when |len_a - len_b| / max(len_a, len_b, 1) <= NEAR_EQUAL (chars)
MIN_GROUP = 30  # groups with fewer pairs are reported but not eligible as worst group / flag
_ALPHA = 0.05


def assign_groups(y: np.ndarray, len_a: np.ndarray, len_b: np.ndarray) -> np.ndarray:
    """The length group of each pair (a str array): one of ``GROUPS``, or ``"tie"`` when y is not 0 or 1."""
    y = np.asarray(y, dtype=np.float64)
    la, lb = np.asarray(len_a, dtype=np.float64), np.asarray(len_b, dtype=np.float64)
    if not (y.shape == la.shape == lb.shape):
        raise ValueError(f"assign_groups: y, len_a, len_b must have one shape, got {y.shape}, {la.shape}, {lb.shape}")
    rel = np.abs(la - lb) / np.maximum(np.maximum(la, lb), 1.0)
    chosen, other = np.where(y == 1.0, la, lb), np.where(y == 1.0, lb, la)
    out = np.where(chosen > other, "chosen_longer", "chosen_shorter").astype(object)
    out[rel <= NEAR_EQUAL] = "near_equal"
    out[(y != 1.0) & (y != 0.0)] = "tie"
    return out.astype(str)


def _interval(draws: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(draws, [_ALPHA / 2, 1 - _ALPHA / 2])
    return float(lo), float(hi)


def group_metrics(
    q: np.ndarray, y: np.ndarray, len_a: np.ndarray, len_b: np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Accuracy of each length group with its interval, the worst eligible group and the bias flag.

    Returns ``{"groups": {name: {"n", "share", "accuracy", "ci_low", "ci_high"}}, "worst_group",
    "worst_group_accuracy", "worst_group_ci_low", "worst_group_ci_high", "length_bias_flag",
    "near_equal_threshold", "min_group"}``. ``share`` is the group's part of the decisive pairs;
    an empty group has accuracy and interval None; with no eligible group the worst group is None
    and the flag False.
    """
    q = np.asarray(q, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    group = assign_groups(y, len_a, len_b)
    correct = (q > 0.5) == (y == 1.0)
    n_decisive = int((group != "tie").sum())
    rng = np.random.default_rng(seed)
    groups: dict[str, dict[str, Any]] = {}
    draws: dict[str, np.ndarray] = {}
    for name in GROUPS:
        member = group == name
        n = int(member.sum())
        row: dict[str, Any] = {
            "n": n,
            "share": n / n_decisive if n_decisive else 0.0,
            "accuracy": None,
            "ci_low": None,
            "ci_high": None,
        }
        if n:
            acc = float(correct[member].mean())
            # resampling n binary outcomes with replacement: the count of right ones is Binomial(n, acc)
            draws[name] = rng.binomial(n, acc, size=n_boot) / n
            row["accuracy"] = acc
            row["ci_low"], row["ci_high"] = _interval(draws[name])
        groups[name] = row
    out: dict[str, Any] = {
        "groups": groups,
        "worst_group": None,
        "worst_group_accuracy": None,
        "worst_group_ci_low": None,
        "worst_group_ci_high": None,
        "length_bias_flag": False,
        "near_equal_threshold": NEAR_EQUAL,
        "min_group": MIN_GROUP,
    }
    eligible = [name for name in GROUPS if groups[name]["n"] >= MIN_GROUP]
    if eligible:
        worst = min(eligible, key=lambda name: groups[name]["accuracy"])
        out["worst_group"] = worst
        out["worst_group_accuracy"] = groups[worst]["accuracy"]
        low, high = _interval(np.min(np.stack([draws[name] for name in eligible]), axis=0))
        out["worst_group_ci_low"], out["worst_group_ci_high"] = low, high
        out["length_bias_flag"] = bool(groups[worst]["accuracy"] < 0.5)
    return out


def flat_group_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """``group_metrics``' numbers as flat keys for W&B / metrics JSON.

    ``length_groups/<group>/accuracy`` (and ``/n``, ``/ci_low``, ``/ci_high``),
    ``worst_group_accuracy`` (+ ``_ci_low``/``_ci_high``) and ``length_bias_flag`` (0/1); None
    values are left out.
    """
    flat: dict[str, float] = {}
    for name, row in metrics["groups"].items():
        for key in ("accuracy", "n", "ci_low", "ci_high"):
            if row[key] is not None:
                flat[f"{prefix}length_groups/{name}/{key}"] = float(row[key])
    for key in ("worst_group_accuracy", "worst_group_ci_low", "worst_group_ci_high"):
        if metrics[key] is not None:
            flat[f"{prefix}{key}"] = float(metrics[key])
    flat[f"{prefix}length_bias_flag"] = float(metrics["length_bias_flag"])
    return flat
