"""Temperature scaling of an ensemble's reward gaps, fitted on labels the members did not train on.

A reward model trained on a few hundred noisy labels is over- or under-confident even when it
ranks pairs well. One scalar T divides every member's reward gap (P = f(d / T, θ)); it is
chosen to minimise the log-loss of the ensemble-mean probabilities on held-out labels: the
validation split, or — for bootstrap members in heads mode — each pair's out-of-bag members
(the members whose resample left it out), so no label is spent on calibration alone. T only
rescales confidence: the ranking of pairs, and so accuracy, is unchanged.

With ``debias = "length"`` (and ``debias_residual``) the same held-out pairs first give the
reward's remaining **length slope** γ (``length_slope``): how much the ensemble-mean reward gap,
chosen minus rejected, still moves with the log-length gap. Training removes what it can see on
its own pairs (the projected heads have no length covariance there), but held-out pairs show
what is left; every reward then becomes ``r − γ·log(1 + characters)`` before T is fitted
(docs/benchmarks.md, #23).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prefloop.model.losses import probs_numpy

__all__ = [
    "MIN_CALIBRATION_PAIRS",
    "calibration_warning",
    "fit_temperature",
    "length_slope",
    "log_lengths",
    "mean_probs",
    "nll_of",
]

MIN_CALIBRATION_PAIRS = 20  # below this a fitted T is noise; keep T = 1
# T only softens (1 ≤ T ≤ 20). A model fitted to few noisy labels is overconfident; asking the
# held-out pairs for T < 1 as well was measured to backfire: with 80 labels on HH helpful the
# out-of-bag fit chose T = 0.67 and held-out log-loss rose to 0.79 (ECE 0.13).
_GRID = np.exp(np.linspace(0.0, np.log(20.0), 122))  # steps of 2.5 %


def mean_probs(
    delta: np.ndarray, thetas: np.ndarray, tie_model: str, mask: np.ndarray | None = None, temperature: float = 1.0
) -> np.ndarray:
    """[n, 3] ensemble-mean (P(a≻b), P(b≻a), P(tie)) over the members ``mask`` selects per pair.

    ``delta`` [n, K] are the members' reward gaps r_a − r_b; rows whose mask is all False
    come out as NaN (no member may speak for them).
    """
    probs = probs_numpy(delta / temperature, np.asarray(thetas)[None, :], tie_model)  # [n, K, 3]
    if mask is None:
        return probs.mean(axis=1)
    m = mask.astype(np.float64)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (probs * m).sum(axis=1) / m.sum(axis=1)


def nll_of(probs: np.ndarray, wins: np.ndarray, tie_model: str) -> float:
    """Weighted mean negative log-likelihood of label weights ``wins`` [n, 3] under ``probs`` [n, 3].

    With ``tie_model='none'`` a tie counts half a win for each side, as in training.
    """
    wins = np.asarray(wins, dtype=np.float64)
    if tie_model == "none":
        wins = np.stack([wins[:, 0] + wins[:, 2] / 2, wins[:, 1] + wins[:, 2] / 2, np.zeros(len(wins))], axis=1)
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    return float(-(wins * logp).sum() / max(wins.sum(), 1e-12))


def fit_temperature(
    delta: np.ndarray, wins: np.ndarray, thetas: np.ndarray, tie_model: str, mask: np.ndarray | None = None
) -> float:
    """The T in [1, 20] minimising held-out log-loss (grid in 2.5 % steps); 1.0 with too few pairs."""
    delta = np.asarray(delta, dtype=np.float64)
    wins = np.asarray(wins, dtype=np.float64)
    usable = wins.sum(axis=1) > 0
    if mask is not None:
        usable &= mask.any(axis=1)
    if usable.sum() < MIN_CALIBRATION_PAIRS:
        return 1.0
    delta, wins = delta[usable], wins[usable]
    mask = None if mask is None else mask[usable]
    losses = [nll_of(mean_probs(delta, thetas, tie_model, mask, t), wins, tie_model) for t in _GRID]
    return float(_GRID[int(np.argmin(losses))])


def log_lengths(texts: Sequence[str]) -> np.ndarray:
    """log(1 + characters) of each text: the length measure the length slope is fitted on."""
    return np.log1p(np.array([len(t) for t in texts], dtype=np.float64))


def length_slope(
    delta: np.ndarray, wins: np.ndarray, len_gap: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, float, int]:
    """(γ, its standard error, pairs used): the least-squares slope of the ensemble-mean reward gap on
    the log-length gap, both oriented chosen minus rejected, over held-out pairs with a winner.

    ``delta`` [n, K] are the members' gaps r_a − r_b (``mask`` picks each pair's out-of-bag
    members), ``len_gap`` [n] is log(1 + len a) − log(1 + len b). Orienting by the label holds
    the preference fixed: a slope here is the reward following length among pairs whose
    preference points the same way, not the data's length prior (which only moves the
    intercept). (0, inf, n) with fewer than ``MIN_CALIBRATION_PAIRS`` usable pairs.
    """
    delta = np.asarray(delta, dtype=np.float64)
    wins = np.asarray(wins, dtype=np.float64)
    m = np.ones_like(delta) if mask is None else np.asarray(mask, dtype=np.float64)
    gap = (delta * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
    sign = np.sign(wins[:, 0] - wins[:, 1])
    usable = (m.sum(axis=1) > 0) & (sign != 0)
    n = int(usable.sum())
    if n < MIN_CALIBRATION_PAIRS:
        return 0.0, float("inf"), n
    y, x = gap[usable] * sign[usable], np.asarray(len_gap, dtype=np.float64)[usable] * sign[usable]
    xc = x - x.mean()
    sxx = float((xc * xc).sum())
    if sxx <= 1e-12:
        return 0.0, float("inf"), n
    slope = float((xc * (y - y.mean())).sum() / sxx)
    resid = y - y.mean() - slope * xc
    se = float(np.sqrt((resid * resid).sum() / max(n - 2, 1) / sxx))
    return slope, se, n


def calibration_warning(
    temperature: float,
    delta: np.ndarray | None,
    wins: np.ndarray | None,
    thetas: np.ndarray,
    tie_model: str,
    mask: np.ndarray | None = None,
) -> str | None:
    """What a user must know about the fitted temperature, or None when it is an interior fit.

    Said when calibration was skipped (no or too few held-out pairs: T = 1 is a default, not a
    fit) or when T sits at a bound of its range: at 20 the model's gaps are far too large for
    the held-out labels; at 1 with a lower log-loss just below it the model is under-confident,
    which T ≥ 1 cannot fix.
    """
    n = 0 if wins is None else int((np.asarray(wins).sum(axis=1) > 0).sum())
    if delta is None or wins is None or n < MIN_CALIBRATION_PAIRS:
        return (
            f"calibration skipped: {n} held-out pairs (at least {MIN_CALIBRATION_PAIRS} needed), so T = 1 and "
            "the probabilities are uncalibrated; label more pairs or raise [model] val_fraction"
        )
    if temperature >= _GRID[-1] * (1 - 1e-9):
        return (
            f"calibration temperature at its upper bound {_GRID[-1]:.0f}: the model is far more confident than its "
            f"{n} held-out pairs allow (a length rule or overfitting); its probabilities stay too sharp"
        )
    if temperature <= _GRID[0] * (1 + 1e-9):
        delta = np.asarray(delta, dtype=np.float64)
        wins = np.asarray(wins, dtype=np.float64)
        at_one = nll_of(mean_probs(delta, thetas, tie_model, mask, 1.0), wins, tie_model)
        below = nll_of(mean_probs(delta, thetas, tie_model, mask, 0.9), wins, tie_model)
        if below < at_one - 0.005:  # a clear gain, not grid noise
            return (
                f"calibration temperature at its lower bound 1: on {n} held-out pairs the model is under-confident "
                f"(log-loss {below:.4f} at T = 0.9 against {at_one:.4f} at 1), which temperature scaling here "
                "does not sharpen"
            )
    return None
