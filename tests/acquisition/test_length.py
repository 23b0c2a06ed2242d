"""Length-aware acquisition on hand-built pools: residual gaps, the length quota, parsing, the cap."""

from __future__ import annotations

import numpy as np
import pytest

from prefloop.acquisition import (
    LengthAwareStrategy,
    ProbPool,
    configured_strategy,
    entropy,
    follows_length,
    get_strategy,
    length_gap,
    length_residual,
    reward_gaps,
)
from prefloop.acquisition.length import against_length, length_decides, residual_probs
from prefloop.errors import StrategyError


def _lengths(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(20, 2000, size=n), rng.integers(20, 2000, size=n)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def test_the_residual_of_a_pure_length_gap_is_zero_and_the_slope_is_the_length_weight() -> None:
    len_a, len_b = _lengths(300)
    dlen = length_gap(len_a, len_b)
    weight = np.array([1.5, 2.0, 2.5])  # each member leans to longer answers by its own amount
    gaps = dlen[:, None] * weight[None, :]
    residual, slope = length_residual(gaps, dlen)
    assert slope == pytest.approx([weight.mean()])
    # the mean's length part is gone; what is left is each member's departure from the mean weight
    np.testing.assert_allclose(residual, dlen[:, None] * (weight - weight.mean())[None, :], atol=1e-9)
    per_member, slopes = length_residual(gaps, dlen, per_member=True)
    np.testing.assert_allclose(slopes, weight)
    np.testing.assert_allclose(per_member, 0.0, atol=1e-9)


def test_the_residual_keeps_the_content_part_of_the_gap() -> None:
    len_a, len_b = _lengths(400, seed=1)
    dlen = length_gap(len_a, len_b)
    content = np.random.default_rng(2).normal(size=400)
    content -= dlen * (dlen @ content) / (dlen @ dlen)  # content that length does not predict
    residual, slope = length_residual(1.7 * dlen + content, dlen)
    assert slope[0] == pytest.approx(1.7)
    np.testing.assert_allclose(residual, content, atol=1e-9)
    unchanged, zero = length_residual(content, np.zeros(400))
    assert zero[0] == 0.0 and np.array_equal(unchanged, content), "no length difference: nothing to remove"


def test_residual_probabilities_carry_the_residual_gap_and_keep_the_tie_mass() -> None:
    rng = np.random.default_rng(3)
    p_tie = rng.uniform(0.0, 0.3, size=50)
    residual = rng.normal(size=(50, 4))
    p = residual_probs(np.full((50, 4), 0.5), p_tie, residual)
    np.testing.assert_allclose(reward_gaps(p, p_tie), residual, atol=1e-6)
    assert (p < 1.0 - p_tie[:, None]).all(), "P(a≻b) stays inside the decisive mass 1 − P(tie)"


def test_follows_length_takes_the_direction_from_the_sign_of_the_fit() -> None:
    len_a = np.array([100, 100, 500, 500, 100])
    len_b = np.array([500, 500, 100, 100, 105])  # the last pair is near-equal in length
    mean_gap = np.array([-1.0, 1.0, 1.0, -1.0, -1.0])  # + prefers a
    dlen, decides = length_gap(len_a, len_b), length_decides(len_a, len_b)
    # a model that leans to longer answers follows length where it prefers the longer response
    assert follows_length(mean_gap, dlen, 2.0, decides).tolist() == [True, False, True, False, False]
    assert against_length(mean_gap, dlen, 2.0, decides).tolist() == [False, True, False, True, False]
    # one that leans to shorter answers, where it prefers the shorter one
    assert follows_length(mean_gap, dlen, -2.0, decides).tolist() == [False, True, False, True, False]
    assert not follows_length(mean_gap, dlen, 0.0, decides).any(), "no length rule, nothing follows it"


def _confounded_pool(n: int = 200, seed: int = 0) -> tuple[ProbPool, np.ndarray]:
    """Half the pairs: the model prefers the longer answer, confidently and in agreement (length
    explains it). The other half: it prefers the shorter one, its members split (real doubt)."""
    rng = np.random.default_rng(seed)
    len_a = rng.integers(100, 1000, size=n)
    len_b = (len_a * rng.choice([0.3, 3.0], size=n)).astype(np.int64)  # never near-equal
    dlen = length_gap(len_a, len_b)
    follows = np.arange(n) < n // 2
    spread = np.where(follows[:, None], 0.01, 1.5) * np.linspace(-1.0, 1.0, 5)[None, :]
    gaps = np.where(follows, 2.0, -1.0)[:, None] * dlen[:, None] + spread
    return ProbPool(_sigmoid(gaps), len_a=len_a, len_b=len_b, prompt_ids=np.arange(n)), follows


@pytest.mark.parametrize("k", [8, 20, 41])
def test_each_batch_holds_its_share_of_pairs_whose_preference_follows_length(k: int) -> None:
    pool, follows = _confounded_pool()
    mean_gap = reward_gaps(pool.p_members).mean(axis=1)
    _, slope = length_residual(reward_gaps(pool.p_members), length_gap(pool.len_a, pool.len_b))  # type: ignore[arg-type]
    assert np.array_equal(follows_length(mean_gap, length_gap(pool.len_a, pool.len_b), slope[0]), follows)  # type: ignore[arg-type]
    plain = get_strategy("bald").select(pool, k)
    assert not follows[plain.indices].any(), "plain BALD never asks where the model follows length"
    sel = get_strategy("length_aware:bald", share=0.25).select(pool, k)
    want = int(np.floor(0.25 * k + 0.5))
    assert len(sel) == k and len(set(sel.indices.tolist())) == k
    assert follows[sel.indices].sum() >= want
    assert sel.params["length_quota_picks"] == want and sel.params["length_slope"] > 0
    assert set(follows[sel.indices[:want]]) == {True}, "the quota pairs come first, recorded as such"
    against = get_strategy("length_aware:bald", share=0.5, quota="against").select(pool, k)
    assert (~follows[against.indices]).sum() >= int(np.floor(0.5 * k + 0.5))


def test_uncertainty_counts_length_explained_confidence_as_not_knowledge() -> None:
    rng = np.random.default_rng(4)
    n = 100
    len_a = rng.integers(100, 1000, size=n)
    len_b = np.where(np.arange(n) < 50, len_a * 4, len_a)  # first half: b is 4x longer; rest: equal
    dlen = length_gap(len_a, len_b)
    content = np.where(np.arange(n) < 50, 0.0, rng.choice([-1.0, 1.0], size=n))  # half: only content
    gaps = (-3.0 * dlen + content)[:, None] + 0.01 * rng.normal(size=(n, 3))
    pool = ProbPool(_sigmoid(gaps), len_a=len_a, len_b=len_b)
    assert entropy(pool.p_members)[:50].max() < entropy(pool.p_members)[50:].min(), "length looks like knowledge"
    picks = get_strategy("length_aware:entropy", share=0.0).select(pool, 20).indices
    assert (picks < 50).all(), "with length removed, the pairs length alone decided are the least known"


def test_the_strategy_name_parses_with_its_parameters() -> None:
    default = get_strategy("length_aware")
    assert isinstance(default, LengthAwareStrategy) and default.name == "length_aware:noise_aware"
    assert default.params == {
        "inner": "noise_aware",
        "inner_params": {},
        "share": 0.25,
        "quota": "follows",
        "max_per_prompt": None,
    }
    spec = get_strategy("length-aware:bald", share=0.4, quota="against", max_per_prompt=2)
    assert (spec.name, spec.params["share"], spec.params["quota"], spec.params["max_per_prompt"]) == (
        "length_aware:bald",
        0.4,
        "against",
        2,
    )
    rebuilt = get_strategy(spec.name, **{k: v for k, v in spec.params.items() if k not in ("inner", "inner_params")})
    assert rebuilt.params == spec.params, "name and params rebuild the strategy"
    # [acquisition] names its parameters flat: the wrapper takes share / quota, the inner one the rest
    nested = configured_strategy("length_aware:noise_aware", {"share": 0.1, "tie_max": 0.3}, 2)
    assert nested.params["share"] == 0.1 and nested.params["inner_params"] == {"tie_max": 0.3}
    assert nested.params["max_per_prompt"] == 2
    with pytest.raises(StrategyError, match="share must be a number from 0 to 1"):
        get_strategy("length_aware", share=1.5)
    with pytest.raises(StrategyError, match="quota must be 'follows' or 'against'"):
        get_strategy("length_aware", quota="longer")
    with pytest.raises(StrategyError, match="needs the responses' lengths"):
        get_strategy("length_aware").select(ProbPool(np.full((4, 2), 0.6)), 2)


def test_the_prompt_cap_and_the_exclusions_hold_over_the_whole_batch() -> None:
    pool, follows = _confounded_pool(n=200, seed=5)
    pool.prompt_ids = np.arange(200) // 4  # four pairs per prompt
    pool.exclude = np.arange(0, 200, 3)
    sel = get_strategy("length_aware:bald", share=0.5, max_per_prompt=1).select(pool, 30)
    assert len(sel) == 30
    assert np.unique(pool.prompt_ids[sel.indices]).size == 30, "one pair per prompt over quota and the rest"
    assert not np.isin(sel.indices, pool.exclude).any()
    assert follows[sel.indices].sum() >= 15
