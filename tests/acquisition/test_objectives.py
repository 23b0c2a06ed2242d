"""Acquisition across the heads of a multi-objective model, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from prefloop.acquisition import ProbPool, decisive_probs, dimension_disagreement, get_strategy
from prefloop.errors import StrategyError


def test_disagreement_is_the_less_confident_of_two_opposing_heads() -> None:
    q = np.array(
        [
            [0.9, 0.2],  # helpful prefers a (by 0.4), harmless b (by 0.3): 2·min(0.4, 0.3) = 0.6
            [0.9, 0.6],  # both prefer a: 0
            [0.55, 0.45],  # barely opposed: 2·0.05 = 0.1
            [0.3, 0.1],  # both prefer b: 0
            [0.5, 0.5],  # no preference: 0
        ]
    )
    assert dimension_disagreement(q) == pytest.approx([0.6, 0.0, 0.1, 0.0, 0.0])


def test_three_heads_use_the_most_opposed_pair() -> None:
    # q⁺ = 0.7, q⁻ = 0.1: 2·min(0.2, 0.4) = 0.4
    assert dimension_disagreement(np.array([[0.7, 0.4, 0.1]])) == pytest.approx([0.4])
    assert dimension_disagreement(np.array([[0.9], [0.1]])).tolist() == [0.0, 0.0]  # one head never disagrees


def test_decisive_probability_leaves_the_tie_out() -> None:
    # P(a≻b) = 0.4, P(tie) = 0.2 → 0.4 / 0.8 = 0.5; P(tie) = 1 has no decisive mass → 0.5
    assert decisive_probs(np.array([0.4, 0.0, 0.6]), np.array([0.2, 1.0, 0.0])) == pytest.approx([0.5, 0.5, 0.6])


def test_strategy_picks_the_pairs_the_heads_fight_over() -> None:
    members = np.full((4, 2), 0.5)
    q = np.array([[0.9, 0.6], [0.8, 0.1], [0.4, 0.7], [0.6, 0.55]])  # scores 0, 0.6, 0.2, 0
    sel = get_strategy("dimension_disagreement").select(ProbPool(members, dimension_probs=q), 2)
    assert sel.indices.tolist() == [1, 2] and sel.scores == pytest.approx([0.6, 0.2])
    excluded = get_strategy("dimension_disagreement").select(
        ProbPool(members, dimension_probs=q, exclude=np.array([1])), 1
    )
    assert excluded.indices.tolist() == [2]


def test_strategy_without_heads_says_what_to_train() -> None:
    with pytest.raises(StrategyError, match="--dimension A --dimension B"):
        get_strategy("dimension_disagreement").select(ProbPool(np.full((3, 2), 0.5)), 1)
    with pytest.raises(ValueError, match="dimension_probs has 2 rows"):
        ProbPool(np.full((3, 2), 0.5), dimension_probs=np.zeros((2, 2)))
