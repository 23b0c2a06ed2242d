"""BAL-PM's kNN entropy term and its greedy batch, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prefloop.acquisition import entropy_greedy_select, knn_distances, knn_entropy, knn_entropy_gain, shortlist, top_k


def test_knn_distances_hand_values() -> None:
    x = np.array([[0.0, 0.0]])
    ref = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])  # distances 5, 1, 2
    np.testing.assert_allclose(knn_distances(x, ref, 2), [[1.0, 2.0]])
    np.testing.assert_allclose(knn_distances(x, ref, 5), [[1.0, 2.0, 5.0, np.inf, np.inf]])
    assert np.isinf(knn_distances(x, np.empty((0, 2)), 1)).all()


def test_knn_entropy_hand_value() -> None:
    # points 0, 1, 3 on a line, k = 1: ρ = (1, 1, 2); V_1 = 2 (the interval [−1, 1])
    # Ĥ = ψ(3) − ψ(1) + log 2 + (1/3)(log 1 + log 1 + log 2) = 1.5 + log 2 + (log 2)/3
    got = knn_entropy(np.array([[0.0], [1.0], [3.0]]), k=1)
    assert got == pytest.approx(1.5 + math.log(2) + math.log(2) / 3)
    # spreading the points out by a factor c adds d·log c
    x = np.random.default_rng(0).normal(size=(40, 3))
    assert knn_entropy(10 * x) == pytest.approx(knn_entropy(x) + 3 * math.log(10))
    with pytest.raises(ValueError, match="more than k"):
        knn_entropy(np.zeros((1, 2)))


def test_knn_entropy_gain_hand_values() -> None:
    # N = 1 acquired, d = 2: gain = (2/2)·log ρ → log 1 = 0, log e = 1
    np.testing.assert_allclose(knn_entropy_gain(np.array([1.0, math.e]), 1, 2), [0.0, 1.0])
    # N = 3, d = 8: factor 8/4 = 2
    np.testing.assert_allclose(knn_entropy_gain(np.array([math.e]), 3, 8), [2.0])
    np.testing.assert_allclose(knn_entropy_gain(np.array([5.0, 0.1]), 0, 4), [0.0, 0.0])  # empty set: no gain


def test_greedy_hand_example() -> None:
    # 1-D candidates at 0, 0.1 and 5 with scores 1.0, 0.9, 0.5; nothing acquired yet; d = 1, β = 1.
    # pick 1: no gain yet → the best score, candidate 0 (criterion 1.0)
    # pick 2: N = 1, gain = (1/2)·log ρ: candidate 1 → 0.9 + ½·log 0.1 ≈ −0.251; candidate 2 → 0.5 + ½·log 5 ≈ 1.305
    emb = np.array([[0.0], [0.1], [5.0]])
    scores = np.array([1.0, 0.9, 0.5])
    idx, crit = entropy_greedy_select(scores, emb, np.arange(3), 2, beta=1.0)
    assert idx.tolist() == [0, 2]
    np.testing.assert_allclose(crit, [1.0, 0.5 + 0.5 * math.log(5)])
    # β = 0 is plain top-k
    assert entropy_greedy_select(scores, emb, np.arange(3), 2, beta=0.0)[0].tolist() == [0, 1]
    # an acquired point at 0.05 already covers candidates 0 and 1: candidate 2 goes first
    # (N = 1: 0.5 + ½·log 4.95 ≈ 1.30 against 1.0 + ½·log 0.05 ≈ −0.50)
    idx, _ = entropy_greedy_select(scores, emb, np.arange(3), 1, acquired=np.array([[0.05]]))
    assert idx.tolist() == [2]


def _near_duplicates(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """50 near-duplicate pairs of one prompt (top scores) + 50 other prompts (lower scores)."""
    centre = rng.normal(size=16)
    emb = np.vstack([centre + 0.01 * rng.normal(size=(50, 16)), rng.normal(size=(50, 16)) * 3])
    scores = np.r_[0.6 + 0.01 * rng.random(50), 0.3 + 0.2 * rng.random(50)]
    prompts = np.r_[np.zeros(50, dtype=int), np.arange(1, 51)]
    return emb, scores, prompts


def test_entropy_term_prefers_a_spread_out_batch() -> None:
    emb, scores, prompts = _near_duplicates(np.random.default_rng(0))
    plain = top_k(scores, 10)
    spread, _ = entropy_greedy_select(scores, emb, shortlist(scores, 100), 10, beta=0.1)
    assert len(set(prompts[plain])) == 1
    assert len(set(prompts[spread])) >= 9
    assert spread[0] == plain[0]  # nothing acquired yet: the first pick is the best score
    assert knn_entropy(emb[spread]) > knn_entropy(emb[plain]) + 10


def test_greedy_respects_cap_and_candidates() -> None:
    emb, scores, prompts = _near_duplicates(np.random.default_rng(0))
    cand = np.arange(0, 100, 2)
    idx, _ = entropy_greedy_select(scores, emb, cand, 30, beta=0.0, prompt_ids=prompts, max_per_prompt=2)
    assert set(idx.tolist()) <= set(cand.tolist())
    assert np.bincount(prompts[idx]).max() <= 2
    assert len(idx) == 27  # 2 from the duplicate prompt + the 25 other prompts among the candidates
