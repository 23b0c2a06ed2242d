"""Strategy registry, spec parsing, recorded params, exclusions and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from prefloop.acquisition import DiverseStrategy, ProbPool, available_strategies, bald, get_strategy


def _pool(n: int = 200, k: int = 5, seed: int = 0, **kw: object) -> ProbPool:
    rng = np.random.default_rng(seed)
    centre = rng.random((n, 1))
    p = np.clip(centre + 0.2 * rng.normal(size=(n, k)), 0.0, 1.0)
    return ProbPool(p_members=p, embeddings=rng.normal(size=(n, 8)),
                    prompt_ids=rng.integers(0, 40, size=n), **kw)  # type: ignore[arg-type]


def test_registry_names_and_spec_strings() -> None:
    assert set(available_strategies()) >= {"random", "entropy", "disagreement", "bald", "margin", "diverse"}
    for name in ("random", "entropy", "disagreement", "bald", "margin", "logit_disagreement"):
        s = get_strategy(name)
        assert s.name == name and s.params == {}
    for spec in ("diverse:bald", "diverse(bald)", "Diverse:BALD"):
        s = get_strategy(spec)
        assert isinstance(s, DiverseStrategy) and s.name == "diverse:bald"
    s = get_strategy("diverse", inner="margin", shortlist=50, method="kmeanspp")
    assert s.name == "diverse:margin"
    assert s.params["shortlist"] == 50 and s.params["method"] == "kmeanspp" and s.params["inner"] == "margin"


@pytest.mark.parametrize("spec", ["nope", "bald:entropy", "diverse"])
def test_bad_specs_say_what_is_known(spec: str) -> None:
    with pytest.raises(ValueError, match=r"bald|inner|diverse"):
        get_strategy(spec)


def test_params_round_trip_rebuilds_the_same_strategy() -> None:
    s = get_strategy("diverse:bald", shortlist=60, max_per_prompt=2, inner_params={"max_per_prompt": 3})
    again = get_strategy(s.name, **s.params)
    assert again.name == s.name and again.params == s.params
    pool = _pool()
    assert s.select(pool, 10).indices.tolist() == again.select(pool, 10).indices.tolist()
    sel = s.select(pool, 10)
    assert sel.strategy == "diverse:bald" and sel.params == s.params


def test_bald_strategy_picks_highest_bald() -> None:
    pool = _pool()
    sel = get_strategy("bald").select(pool, 5)
    want = np.argsort(-bald(pool.p_members))[:5]
    assert sel.indices.tolist() == want.tolist()
    np.testing.assert_allclose(sel.scores, bald(pool.p_members)[want])


@pytest.mark.parametrize("spec", ["random", "entropy", "disagreement", "bald", "margin", "diverse:bald",
                                  "diverse:random"])
def test_exclusions_always_hold(spec: str) -> None:
    excluded = np.arange(0, 200, 2)
    for exclude in (excluded, np.isin(np.arange(200), excluded)):
        sel = get_strategy(spec).select(_pool(exclude=exclude), 60, np.random.default_rng(0))
        assert len(sel) == 60
        assert not set(sel.indices.tolist()) & set(excluded.tolist())
        assert len(set(sel.indices.tolist())) == 60
    # asking for more than is left returns only what is left
    sel = get_strategy(spec).select(_pool(exclude=excluded), 150, np.random.default_rng(0))
    assert sorted(sel.indices.tolist()) == list(range(1, 200, 2)) or spec.startswith("diverse")
    assert not set(sel.indices.tolist()) & set(excluded.tolist())


@pytest.mark.parametrize("spec", ["entropy", "diverse:bald"])
def test_per_prompt_cap(spec: str) -> None:
    pool = _pool()
    sel = get_strategy(spec, max_per_prompt=1).select(pool, 30)
    assert np.bincount(pool.prompt_ids[sel.indices]).max() == 1  # type: ignore[index]


@pytest.mark.parametrize("spec", ["random", "diverse:random", "diverse:bald"])
def test_deterministic_under_seed(spec: str) -> None:
    pool = _pool()
    kw = {"method": "kmeanspp"} if spec.startswith("diverse") else {}
    a = get_strategy(spec, **kw).select(pool, 20, np.random.default_rng(7)).indices
    b = get_strategy(spec, **kw).select(pool, 20, np.random.default_rng(7)).indices
    c = get_strategy(spec, **kw).select(pool, 20, np.random.default_rng(8)).indices
    assert a.tolist() == b.tolist()
    if spec != "diverse:bald":
        assert a.tolist() != c.tolist()


def test_diverse_needs_embeddings() -> None:
    with pytest.raises(ValueError, match="embeddings"):
        get_strategy("diverse:bald").select(ProbPool(p_members=np.full((5, 2), 0.5)), 2)


def test_pool_checks_row_counts() -> None:
    with pytest.raises(ValueError, match="prompt_ids"):
        ProbPool(p_members=np.zeros((3, 2)), prompt_ids=np.zeros(4))
