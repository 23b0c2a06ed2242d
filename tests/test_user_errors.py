"""Errors a user can cause through configuration or the Python API are PrefloopErrors that say
what to do (exit codes from one map), not bare ValueErrors; programming errors stay asserts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from prefloop.acquisition import ProbPool, get_strategy
from prefloop.acquisition.batch import apply_prompt_cap
from prefloop.errors import ConfigError, ExitCode, ModelError, PrefloopError, StrategyError, exit_code_for
from prefloop.model.heads import RewardHead
from prefloop.model.losses import log_probs


@pytest.mark.parametrize(
    ("build", "hint"),
    [
        (lambda: RewardHead(4, "bogus", 8, 0.0, "davidson"), "'linear' or 'mlp'"),
        (lambda: log_probs(torch.zeros(2), torch.zeros(()), "bogus"), "rao_kupper"),
    ],
)
def test_model_requests_it_cannot_honour_are_model_errors(build: Callable[[], object], hint: str) -> None:
    with pytest.raises(ModelError, match=hint) as info:
        build()
    assert isinstance(info.value, PrefloopError) and exit_code_for(info.value) == ExitCode.ERROR


@pytest.mark.parametrize(
    ("spec", "params"),
    [("margin", {"max_per_prompt": 0}), ("diverse:margin", {"max_per_prompt": -1}), ("balpm", {"max_per_prompt": 0})],
)
def test_a_bad_per_prompt_cap_fails_when_the_strategy_is_built(spec: str, params: dict[str, int]) -> None:
    with pytest.raises(StrategyError, match="max_per_prompt") as info:
        get_strategy(spec, **params)
    assert isinstance(info.value, ConfigError) and exit_code_for(info.value) == ExitCode.CONFIG_ERROR


def test_a_cap_given_to_the_batch_function_directly_is_a_strategy_error() -> None:
    with pytest.raises(StrategyError, match="at least 1"):
        apply_prompt_cap(np.arange(3), np.zeros(3, dtype=np.int64), 0)


@pytest.mark.parametrize("spec", ["diverse:margin", "balpm"])
def test_embedding_strategies_without_embeddings_say_what_to_pass(spec: str) -> None:
    strategy = get_strategy(spec)
    assert strategy.needs_embeddings
    pool = ProbPool(np.full((6, 3), 0.5))
    with pytest.raises(StrategyError, match=r"needs pair embeddings: pass ProbPool\(embeddings=...\)"):
        strategy.select(pool, 2)


def test_the_embedding_strategies_share_their_parameters_and_select() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, size=(40, 4))
    emb = rng.normal(size=(40, 8))
    for spec in ("diverse:margin", "balpm"):
        strategy = get_strategy(spec, max_per_prompt=1, shortlist=20)
        assert {"inner", "inner_params", "shortlist", "max_per_prompt"} <= set(strategy.params)
        chosen = strategy.select(ProbPool(p, prompt_ids=np.arange(40) // 2, embeddings=emb), 5, rng).indices
        assert len(chosen) == 5 and len(set((np.asarray(chosen) // 2).tolist())) == 5  # one per prompt
