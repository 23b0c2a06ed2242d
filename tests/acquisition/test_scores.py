"""Each acquisition score against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prefloop.acquisition import bald, disagreement, entropy, logit_disagreement, margin, random_scores

LN2 = math.log(2)


def h2(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_entropy_peaks_at_half_and_is_symmetric() -> None:
    p = np.array([[0.5, 0.5], [0.9, 0.9], [0.1, 0.1], [1.0, 1.0]])
    h = entropy(p)
    assert h[0] == pytest.approx(LN2)
    assert h[1] == pytest.approx(h2(0.9)) and h[2] == pytest.approx(h[1])
    assert h[3] == pytest.approx(0.0, abs=1e-9)
    assert np.argmax(entropy(np.linspace(0.01, 0.99, 99)[:, None])) == 49


def test_entropy_of_mean_not_mean_of_entropies() -> None:
    # members at 0.1 and 0.9: mean 0.5 → entropy log 2
    assert entropy(np.array([[0.1, 0.9]]))[0] == pytest.approx(LN2)


def test_tie_aware_entropy_over_three_outcomes() -> None:
    p = np.array([[1 / 3, 1 / 3], [0.5, 0.5]])
    t = np.array([1 / 3, 0.0])
    h = entropy(p, p_tie=t)
    assert h[0] == pytest.approx(math.log(3))
    assert h[1] == pytest.approx(LN2)  # a zero tie probability is the two-outcome case
    # per-member ties: members (0.6, 0.2 tie) and (0.2, 0.2 tie) → mean (0.4, 0.4, 0.2)
    h3 = entropy(np.array([[0.6, 0.2]]), p_tie=np.array([[0.2, 0.2]]))[0]
    assert h3 == pytest.approx(-(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2)))


def test_bald_is_zero_when_members_agree() -> None:
    p = np.array([[0.5, 0.5, 0.5], [0.8, 0.8, 0.8], [0.99, 0.99, 0.99]])
    np.testing.assert_allclose(bald(p), 0.0, atol=1e-12)
    np.testing.assert_allclose(bald(p, p_tie=np.array([0.2, 0.1, 0.0])), 0.0, atol=1e-12)


def test_bald_hand_value() -> None:
    # members 0.1 and 0.9: H(mean)=log2, mean H = h2(0.1)
    assert bald(np.array([[0.1, 0.9]]))[0] == pytest.approx(LN2 - h2(0.1))
    # confident contradiction beats shared doubt
    assert bald(np.array([[0.01, 0.99]]))[0] > bald(np.array([[0.4, 0.6]]))[0]


def test_disagreement_is_member_variance() -> None:
    p = np.array([[0.7, 0.7, 0.7], [0.2, 0.4, 0.6], [0.0, 1.0, 0.5]])
    d = disagreement(p)
    assert d[0] == pytest.approx(0.0)
    assert d[1] == pytest.approx(np.mean((np.array([0.2, 0.4, 0.6]) - 0.4) ** 2))
    assert d[2] == pytest.approx(1 / 6)


def test_logit_disagreement_is_variance_of_reward_gaps() -> None:
    p = 1 / (1 + np.exp(-np.array([[1.0, 3.0], [2.0, 2.0]])))
    np.testing.assert_allclose(logit_disagreement(p), [1.0, 0.0], atol=1e-9)
    # it separates members that plain variance sees as nearly identical
    near = np.array([[0.99, 0.9999]])
    assert logit_disagreement(near)[0] > 1.0 > 100 * disagreement(near)[0]


def test_margin() -> None:
    p = np.array([[0.5, 0.5], [0.8, 0.6], [1.0, 1.0], [0.3, 0.3]])
    np.testing.assert_allclose(margin(p), [1.0, 1 - abs(2 * 0.7 - 1), 0.0, 1 - 0.4])
    # with ties: mean (0.5, 0.3, 0.2) → margin 1 − (0.5 − 0.3)
    assert margin(np.array([[0.5]]), p_tie=np.array([0.2]))[0] == pytest.approx(0.8)


def test_random_scores_are_seeded() -> None:
    a = random_scores(10, np.random.default_rng(3))
    b = random_scores(10, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (10,) and np.all((a >= 0) & (a < 1))


def test_shape_errors_are_explained() -> None:
    with pytest.raises(ValueError, match="n_pairs, n_members"):
        entropy(np.zeros((2, 2, 2)))
