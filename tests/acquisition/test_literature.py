"""DRTS, DeltaUCB, EPIG and the noise-aware rule against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prefloop.acquisition import aleatoric_mask, bald, delta_ucb, drts, epig, noise_aware, reward_posterior, top_k

LN2 = math.log(2)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))


def h2(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


# ---- reward posterior, DeltaUCB, DRTS ------------------------------------------------------


def test_reward_posterior_from_gaps_and_from_rewards() -> None:
    # members' gaps d = (1, 3): mean 2, population std 1; response b pinned at (0, 0)
    mu_a, sd_a, mu_b, sd_b = reward_posterior(sigmoid([[1.0, 3.0]]))
    assert (mu_a[0], sd_a[0], mu_b[0], sd_b[0]) == pytest.approx((2.0, 1.0, 0.0, 0.0), abs=1e-6)
    ra, rb = np.array([[0.0, 2.0]]), np.array([[1.0, 1.0]])
    assert [v[0] for v in reward_posterior(sigmoid([[0.0, 0.0]]), None, ra, rb)] == [1.0, 1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="both"):
        reward_posterior(sigmoid([[0.0, 0.0]]), None, ra, None)


def test_delta_ucb_hand_values() -> None:
    # row 0: d = (1, 3) → |2| + β·1; row 1: d = (−2, −2) → |−2| + β·0
    p = sigmoid([[1.0, 3.0], [-2.0, -2.0]])
    np.testing.assert_allclose(delta_ucb(p), [3.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(delta_ucb(p, beta=0.5), [2.5, 2.0], atol=1e-6)
    # per-member rewards: r_a = (0, 2) → μ 1, σ 1; r_b = (1, 1) → μ 1, σ 0: |1 − 1| + 1·(1 + 0) = 1
    assert delta_ucb(p[:1], rewards_a=np.array([[0.0, 2.0]]), rewards_b=np.array([[1.0, 1.0]]))[0] == 1.0
    # Davidson members: the tie column does not change the gap log P(a)/P(b) = d
    d, theta = np.array([1.0, 3.0]), 0.5
    z = np.exp(d / 2) + np.exp(-d / 2) + np.exp(theta)
    pa, pt = np.exp(d / 2) / z, np.exp(theta) / z
    assert delta_ucb(pa[None, :], pt[None, :])[0] == pytest.approx(3.0, abs=1e-6)


def _gap_pool() -> np.ndarray:
    # pair 0: members agree the pair is a coin flip (gap 0, σ 0) → 0
    # pair 1: members disagree, gaps (−1, 1) → |μ| 0, σ 1
    # pair 2: members agree on a large gap (4, 4) → 4
    return sigmoid([[0.0, 0.0], [-1.0, 1.0], [4.0, 4.0]])


def test_delta_ucb_and_drts_pick_the_expected_pair() -> None:
    p = _gap_pool()
    np.testing.assert_allclose(delta_ucb(p), [0.0, 1.0, 4.0], atol=1e-6)
    assert top_k(delta_ucb(p), 2).tolist() == [2, 1]
    for seed in range(5):
        s = drts(p, np.random.default_rng(seed))
        # pair 2: |4 + z·0| = 4; pair 1: |0 + z·1| < 1; pair 0: 0
        assert s[2] == pytest.approx(4.0, abs=1e-6) and 0 <= s[1] <= 1 and s[0] == pytest.approx(0.0, abs=1e-6)
        assert top_k(s, 2).tolist() == [2, 1]


def test_drts_is_a_draw_inside_delta_ucb() -> None:
    rng = np.random.default_rng(0)
    p = rng.random((200, 5))
    ra, rb = rng.normal(size=(200, 5)), rng.normal(size=(200, 5))
    for kw in ({}, {"rewards_a": ra, "rewards_b": rb}):
        s = drts(p, np.random.default_rng(1), beta=2.0, **kw)  # type: ignore[arg-type]
        assert np.all(s >= 0) and np.all(s <= delta_ucb(p, beta=2.0, **kw) + 1e-9)  # type: ignore[arg-type]


def test_drts_hand_value_and_seed() -> None:
    # one pair, rewards r_a = (0, 2) → μ 1, σ 1; r_b = (0, 0) → μ 0, σ 0: score |1 + β·z_a·1 − 0|
    p, ra, rb = np.array([[0.5, 0.5]]), np.array([[0.0, 2.0]]), np.zeros((1, 2))
    z = np.random.default_rng(3).uniform(-1.0, 1.0, size=(1, 2))
    got = drts(p, np.random.default_rng(3), rewards_a=ra, rewards_b=rb)
    assert got[0] == pytest.approx(abs(1.0 + z[0, 0]))
    p = np.random.default_rng(0).random((50, 4))
    np.testing.assert_array_equal(drts(p, np.random.default_rng(7)), drts(p, np.random.default_rng(7)))
    assert not np.array_equal(drts(p, np.random.default_rng(7)), drts(p, np.random.default_rng(8)))


# ---- EPIG -------------------------------------------------------------------------------------


def test_epig_hand_values() -> None:
    # two certain members that contradict each other; target = the pair itself:
    # p(y, y*) = diag(½, ½), marginals ½ → I = log 2
    assert epig(np.array([[1.0, 0.0]]))[0] == pytest.approx(LN2)
    # candidate members (0.9, 0.1), target members (1, 0): y* reveals the member, so I(y; y*) = BALD:
    # joint [[.45, .05], [.05, .45]] → .9·log(.45/.25) + .1·log(.05/.25) = log 2 − h2(.1) ≈ 0.368064
    p = np.array([[0.9, 0.1], [1.0, 0.0]])
    assert epig(p, targets=np.array([1]))[0] == pytest.approx(LN2 - h2(0.1))
    assert epig(p, targets=np.array([1]))[0] == pytest.approx(0.368064, abs=1e-6)
    # candidate (0.9, 0.1), target (0.8, 0.2): p(a, a*) = ½(.9·.8 + .1·.2) = .37, p(a, b*) = ½(.9·.2 + .1·.8) = .13,
    # symmetric; marginals ½ → .74·log(.37/.25) + .26·log(.13/.25) ≈ 0.120090
    p = np.array([[0.9, 0.1], [0.8, 0.2]])
    want = 0.74 * math.log(0.37 / 0.25) + 0.26 * math.log(0.13 / 0.25)
    assert epig(p, targets=np.array([1]))[0] == pytest.approx(want) == pytest.approx(0.120090, abs=1e-6)
    # averaged over targets: targets {0, 1} for row 0 → mean of I(row0; row0) and I(row0; row1)
    both = epig(p, targets=np.array([0, 1]))[0]
    assert both == pytest.approx(0.5 * (epig(p, targets=np.array([0]))[0] + want))


def test_epig_three_outcomes() -> None:
    # members certain of a, of b and of a tie: p(y, y*) = diag(⅓, ⅓, ⅓) → I = log 3
    p = np.array([[1.0, 0.0, 0.0]])
    t = np.array([[0.0, 0.0, 1.0]])
    assert epig(p, p_tie=t)[0] == pytest.approx(math.log(3))
    # the same members without the tie outcome: (a, b, b) vs (a, b, b) → joint diag(⅓, ⅔) → h(⅓)
    assert epig(p)[0] == pytest.approx(-(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3)))


def test_epig_properties() -> None:
    rng = np.random.default_rng(0)
    p = rng.random((60, 5))
    tie = rng.random((60, 5)) * (1 - p)
    for kw in ({}, {"p_tie": tie}):
        e = epig(p, n_targets=None, **kw)  # type: ignore[arg-type]
        assert np.all(e >= 0)
        # y and y* meet only through the member: I(y; y*) ≤ I(y; member) = BALD
        assert np.all(e <= bald(p, kw.get("p_tie")) + 1e-9)
    agree = np.vstack([np.full((1, 5), 0.7), p[1:]])
    assert epig(agree, n_targets=None)[0] == pytest.approx(0.0, abs=1e-12)


def test_epig_target_subsample_is_seeded() -> None:
    p = np.random.default_rng(1).random((300, 4))
    a = epig(p, n_targets=20, rng=np.random.default_rng(5))
    b = epig(p, n_targets=20, rng=np.random.default_rng(5))
    c = epig(p, n_targets=20, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # all targets = the explicit list of every row; chunking does not change the result
    np.testing.assert_allclose(epig(p, n_targets=None), epig(p, targets=np.arange(300), chunk=7))


# ---- noise-aware -------------------------------------------------------------------------------


def _noisy_pool() -> tuple[np.ndarray, np.ndarray]:
    # pair 0: members all at 0.5, no ties → BALD 0, all aleatoric
    # pair 1: members (a .5, b 0, tie .5) and (a 0, b .5, tie .5): mean P(tie) .5, BALD = H(¼, ¼, ½) − log 2 = ½·log 2
    # pair 2: members 0.2 and 0.8, no ties → BALD = log 2 − h2(.2) ≈ 0.1927, share ≈ 0.28
    p = np.array([[0.5, 0.5], [0.5, 0.0], [0.2, 0.8]])
    t = np.array([0.0, 0.5, 0.0])
    return p, t


def test_noise_aware_hand_values() -> None:
    p, t = _noisy_pool()
    np.testing.assert_allclose(bald(p, t), [0.0, 0.5 * LN2, LN2 - h2(0.2)], atol=1e-9)
    assert aleatoric_mask(p, t).tolist() == [True, True, False]
    np.testing.assert_allclose(noise_aware(p, t), [0.0 - 2, 0.5 * LN2 - 2, LN2 - h2(0.2)], atol=1e-9)


def test_noise_aware_skips_ties_and_coin_flips() -> None:
    p, t = _noisy_pool()
    assert top_k(bald(p, t), 1).tolist() == [1]  # plain BALD falls for the likely tie
    assert top_k(noise_aware(p, t), 3).tolist() == [2, 1, 0]  # noisy pairs only fill the batch, in BALD order
    # with a lenient rule nothing is flagged and the ranking is BALD's
    np.testing.assert_allclose(noise_aware(p, t, tie_max=1.1, min_epistemic_share=0.0), bald(p, t))
    # a likely tie whose members split a/b: (a .3, b 0, tie .7) and (a 0, b .3, tie .7) →
    # BALD = H(.15, .15, .7) − H(.3, .7) = .3·log 2 ≈ 0.208, above the disagreeing pair's
    # BALD (members .1 and .6: h2(.35) − ½(h2(.1) + h2(.6)) ≈ 0.148); only noise_aware passes it by
    p2, t2 = np.array([[0.3, 0.0], [0.1, 0.6]]), np.array([0.7, 0.0])
    np.testing.assert_allclose(bald(p2, t2), [0.3 * LN2, h2(0.35) - 0.5 * (h2(0.1) + h2(0.6))], atol=1e-9)
    assert top_k(bald(p2, t2), 1).tolist() == [0]
    assert top_k(noise_aware(p2, t2), 1).tolist() == [1]
    # P(tie) ≈ 1 is skipped the same way
    assert aleatoric_mask(np.array([[0.0, 0.01]]), np.array([0.99])).tolist() == [True]


def test_certain_pairs_are_not_noisy() -> None:
    assert aleatoric_mask(np.array([[1.0, 1.0]])).tolist() == [False]
    assert noise_aware(np.array([[1.0, 1.0]]))[0] == pytest.approx(0.0, abs=1e-12)
