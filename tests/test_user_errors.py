"""Errors a user can cause through configuration or the Python API are PrefloopErrors that say
what to do (exit codes from one map), not bare ValueErrors; programming errors stay asserts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from prefloop.acquisition.batch import apply_prompt_cap
from prefloop.errors import ExitCode, ModelError, PrefloopError, StrategyError, exit_code_for
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


def test_a_cap_given_to_the_batch_function_directly_is_a_strategy_error() -> None:
    with pytest.raises(StrategyError, match="at least 1"):
        apply_prompt_cap(np.arange(3), np.zeros(3, dtype=np.int64), 0)
