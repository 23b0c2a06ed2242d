"""Temperature scaling and the head prior, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import torch

from prefloop.model.calibration import MIN_CALIBRATION_PAIRS, fit_temperature, length_slope, mean_probs, nll_of
from prefloop.model.head_training import Prior
from prefloop.model.heads import RewardHead


def test_mean_probs_and_nll_by_hand() -> None:
    # Bradley-Terry ('none'): member gaps 0 and ln 3 → P(a) = 0.5 and 0.75; mean 0.625
    delta = np.array([[0.0, math.log(3.0)]])
    p = mean_probs(delta, np.zeros(2), "none")
    np.testing.assert_allclose(p, [[0.625, 0.375, 0.0]])
    # a mask keeps only member 1 → 0.75; T = 2 halves the gap: σ(ln3 / 2) = √3/(1+√3)
    np.testing.assert_allclose(mean_probs(delta, np.zeros(2), "none", np.array([[False, True]]))[0, 0], 0.75)
    np.testing.assert_allclose(
        mean_probs(delta[:, 1:], np.zeros(1), "none", temperature=2.0)[0, 0], math.sqrt(3) / (1 + math.sqrt(3))
    )
    # NLL: one A-win at P(a)=0.625 and a tie counted half/half: (−ln .625 − .5 ln .625 − .5 ln .375) / 2
    wins = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    probs = np.array([[0.625, 0.375, 0.0], [0.625, 0.375, 0.0]])
    want = (-math.log(0.625) - 0.5 * math.log(0.625) - 0.5 * math.log(0.375)) / 2
    assert math.isclose(nll_of(probs, wins, "none"), want, rel_tol=1e-12)


def test_fit_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(0, 3, size=(4000, 1))  # an overconfident model: truth is σ(d / 2.5)
    a_wins = rng.random(4000) < 1 / (1 + np.exp(-d[:, 0] / 2.5))
    wins = np.stack([a_wins, ~a_wins, np.zeros(4000, bool)], axis=1).astype(float)
    t = fit_temperature(d, wins, np.zeros(1), "none")
    assert 2.2 < t < 2.8
    # fitted T lowers the log-loss against T = 1
    assert nll_of(mean_probs(d, np.zeros(1), "none", temperature=t), wins, "none") < nll_of(
        mean_probs(d, np.zeros(1), "none"), wins, "none"
    )


def test_too_few_pairs_or_no_out_of_bag_member_keep_t_at_one() -> None:
    d = np.full((10, 2), 5.0)
    wins = np.tile([0.0, 1.0, 0.0], (10, 1))  # badly wrong, but only 10 pairs
    assert fit_temperature(d, wins, np.zeros(2), "davidson") == 1.0
    d, wins = np.full((50, 2), 5.0), np.tile([0.0, 1.0, 0.0], (50, 1))
    assert fit_temperature(d, wins, np.zeros(2), "davidson", np.zeros((50, 2), bool)) == 1.0
    assert math.isclose(fit_temperature(d, wins, np.zeros(2), "davidson"), 20.0)  # confidently wrong → softest T


def test_prior_penalty_by_hand() -> None:
    head = RewardHead(2, "linear", 4, 0.0, "davidson")
    with torch.no_grad():
        head.net.weight.copy_(torch.tensor([[1.0, 2.0]]))
        head.net.bias.fill_(3.0)
    # centred at zero, λ = 4, N = 2 labels: 4/(2·2) · (1 + 4 + 9) = 14
    assert math.isclose(float(Prior(head, 4.0, None, 2.0).penalty().detach()), 14.0)
    parent = RewardHead(2, "linear", 4, 0.0, "davidson")
    with torch.no_grad():
        parent.net.weight.copy_(torch.tensor([[1.0, 0.0]]))
        parent.net.bias.fill_(1.0)
    # centred at the parent: 1 · (0 + 4 + 4) = 8; the tie parameter θ is not penalised
    assert math.isclose(float(Prior(head, 4.0, parent, 2.0).penalty().detach()), 8.0)


def _length_world(n: int, slope: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Member gaps = content + slope·(log-length gap); the label follows the content alone."""
    rng = np.random.default_rng(seed)
    content = rng.normal(0, 1, n)
    len_gap = rng.normal(0, 0.8, n)
    a_wins = content > 0
    wins = np.stack([a_wins, ~a_wins, np.zeros(n, bool)], axis=1).astype(float)
    noise = rng.normal(0, 0.05, (n, 3))
    return content[:, None] + slope * len_gap[:, None] + noise, wins, len_gap


def test_length_slope_recovers_how_much_the_gap_follows_length_at_a_fixed_preference() -> None:
    delta, wins, len_gap = _length_world(2000, 0.4, seed=1)
    slope, se, n = length_slope(delta, wins, len_gap)
    assert n == 2000 and abs(slope - 0.4) < 3 * se and se < 0.05
    # removing it leaves no slope; a reward that does not follow length has none to remove
    again, _, _ = length_slope(delta - slope * len_gap[:, None], wins, len_gap)
    assert abs(again) < 1e-9
    flat, flat_se, _ = length_slope(*_length_world(2000, 0.0, seed=2))
    assert abs(flat) < 3 * flat_se


def test_length_slope_ignores_the_length_prior_of_the_labels() -> None:
    """Longer answers winning more often moves the intercept, not the slope: the reward here does not
    follow length among pairs with the same preference, so nothing is removed."""
    rng = np.random.default_rng(3)
    n = 3000
    len_gap = rng.normal(0, 0.8, n)
    a_wins = rng.random(n) < 1 / (1 + np.exp(-2.0 * len_gap))  # the data: longer mostly wins
    sign = np.where(a_wins, 1.0, -1.0)
    delta = (sign * 1.0 + rng.normal(0, 0.3, n))[:, None]  # a reward that knows the winner, not the length
    wins = np.stack([a_wins, ~a_wins, np.zeros(n, bool)], axis=1).astype(float)
    slope, se, _ = length_slope(delta, wins, len_gap)
    assert abs(slope) < 3 * se


def test_length_slope_uses_only_out_of_bag_members_and_needs_enough_pairs() -> None:
    delta, wins, len_gap = _length_world(400, 0.5, seed=4)
    mask = np.zeros_like(delta, dtype=bool)
    mask[:, 0] = True
    spoiled = delta.copy()
    spoiled[:, 1:] = 100.0 * len_gap[:, None]  # in-bag members, which the mask leaves out
    assert math.isclose(length_slope(spoiled, wins, len_gap, mask)[0], length_slope(delta[:, :1], wins, len_gap)[0])
    ties = np.tile([0.0, 0.0, 1.0], (400, 1))
    assert length_slope(delta, ties, len_gap) == (0.0, float("inf"), 0)  # no winner: nothing to orient by
    small, small_wins, small_gap = _length_world(MIN_CALIBRATION_PAIRS - 1, 0.5, seed=5)
    assert length_slope(small, small_wins, small_gap)[0] == 0.0
