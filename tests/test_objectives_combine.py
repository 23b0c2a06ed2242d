"""The combined reward of several objectives, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prefloop.errors import ModelError
from prefloop.objectives import CombinedReward, combine_member_rewards, combined_probabilities

# one pair, one member: helpful prefers a by 1, harmless prefers b by 2
RA = {"helpful": np.array([[1.0]]), "harmless": np.array([[0.0]])}
RB = {"helpful": np.array([[0.0]]), "harmless": np.array([[2.0]])}


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_weights_are_a_weighted_mean_of_the_heads() -> None:
    spec = CombinedReward(weights={"helpful": 1.0, "harmless": 3.0})
    ra, rb, p = combined_probabilities(RA, RB, spec)
    # R(a) = 0.25·1 + 0.75·0 = 0.25; R(b) = 0.25·0 + 0.75·2 = 1.5; P = σ(0.25 − 1.5)
    assert ra[0, 0] == pytest.approx(0.25) and rb[0, 0] == pytest.approx(1.5)
    assert p[0, 0] == pytest.approx(sigmoid(-1.25)) == pytest.approx(0.2227001388)
    assert spec.describe() == "0.25·helpful + 0.75·harmless"


def test_constraint_is_a_hinge_penalty_on_the_shortfall() -> None:
    spec = CombinedReward(maximize="helpful", constraints={"harmless": 0.5}, penalty=10.0)
    ra, rb, p = combined_probabilities(RA, RB, spec)
    # a misses harmless ≥ 0.5 by 0.5: R(a) = 1 − 10·0.5 = −4; b meets it: R(b) = 0 − 0 = 0
    assert ra[0, 0] == pytest.approx(-4.0) and rb[0, 0] == pytest.approx(0.0)
    assert p[0, 0] == pytest.approx(sigmoid(-4.0)) == pytest.approx(0.0179862100)
    # both feasible (threshold −1): ranked by helpful alone, P = σ(1)
    loose = CombinedReward(maximize="helpful", constraints={"harmless": -1.0})
    assert combined_probabilities(RA, RB, loose)[2][0, 0] == pytest.approx(sigmoid(1.0))
    assert loose.describe() == "max helpful s.t. harmless ≥ -1 (penalty 10)"


def test_per_member_combination_keeps_the_member_axis() -> None:
    ra = {"x": np.array([[1.0, 3.0]]), "y": np.array([[0.0, -1.0]])}
    out = combine_member_rewards(ra, CombinedReward(maximize="x", constraints={"y": 0.0}, penalty=2.0))
    assert out.tolist() == [[1.0, 1.0]]  # member 1: 3 − 2·max(0, 0 − (−1)) = 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "either weights or maximize"),
        ({"weights": {"a": 1.0}, "maximize": "a"}, "either weights or maximize"),
        ({"weights": {"a": -1.0, "b": 2.0}}, "≥ 0"),
        ({"weights": {"a": 0.0}}, "positive sum"),
        ({"maximize": "a", "constraints": {"a": 0.0}}, "both maximised and constrained"),
        ({"maximize": "a", "penalty": 0.0}, "penalty must be > 0"),
    ],
)
def test_invalid_combinations_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        CombinedReward(**kwargs)


def test_missing_dimension_names_the_known_ones() -> None:
    with pytest.raises(ModelError, match="its dimensions: helpful, harmless"):
        combine_member_rewards(RA, CombinedReward(weights={"honest": 1.0}))
