"""Model modes behind one contract: how each trains, loads, scores and saves, and which may warm-start which.

``RewardEnsemble`` holds one implementation of ``ModeImpl`` and never asks which mode it is:

- ``heads``: a frozen backbone's embeddings + K heads (``heads_impl.HeadsImpl``);
- ``finetune``: K fine-tuned members, LoRA when K > 1 (``finetune.FinetuneModel``);
- ``adapted``: one fine-tuned backbone + K linear heads on its features (``adapted.AdaptedImpl``).

A mode's module is imported when the mode is first used (``impl_class``), so a command that
never trains a fine-tuned model does not pay for importing PEFT and accelerate.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from prefloop.config import ModelConfig
from prefloop.errors import ModelError
from prefloop.model.data import PairTargets
from prefloop.model.tracking import MetricsLog

__all__ = ["MODES", "ModeImpl", "can_warm_start", "impl_class"]

Pair = tuple[str, str, str]

#: mode → "module:class" of its implementation
MODES = {
    "heads": "prefloop.model.heads_impl:HeadsImpl",
    "finetune": "prefloop.model.finetune:FinetuneModel",
    "adapted": "prefloop.model.adapted:AdaptedImpl",
}


class ModeImpl(Protocol):
    """What a mode provides to ``RewardEnsemble``."""

    config: ModelConfig

    @classmethod
    def fit(
        cls, train: PairTargets, val: PairTargets | None, config: ModelConfig, parent: Any, log: MetricsLog, bar: Any
    ) -> tuple[ModeImpl, np.ndarray, dict[str, Any]]:
        """Train on ``train`` (``val`` for early stopping and calibration); returns (impl, tie params, stats)."""
        ...

    @classmethod
    def load(cls, path: Path, config: ModelConfig) -> ModeImpl:
        """The implementation saved in ``path`` by ``save``."""
        ...

    def member_rewards(self, pairs: list[Pair], bar: Any) -> tuple[np.ndarray, np.ndarray]:
        """Rewards of a and b per member, [n, K] each."""
        ...

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor that decides the model's outputs (its version is their hash)."""
        ...

    def save(self, path: Path) -> None:
        """Write the weights into ``path``."""
        ...


def impl_class(mode: str) -> type[ModeImpl]:
    """The implementation of ``mode``, its module imported on first use."""
    if mode not in MODES:
        raise ModelError(f"unknown mode {mode!r}; use {', '.join(repr(m) for m in MODES)}")
    module, name = MODES[mode].split(":")
    cls: type[ModeImpl] = getattr(importlib.import_module(module), name)
    return cls


def can_warm_start(parent: ModelConfig, config: ModelConfig) -> bool:
    """Whether a model trained with ``parent`` can start one trained with ``config``: same mode, backbone and k.

    The debias setting may change between them: heads are rebuilt as the new kind from the
    parent's (``head_training.warm_head``), and a backbone's weights are the same kind of thing
    under any likelihood, so a store trained before a debias change keeps its lineage.
    """
    same = (parent.mode, parent.resolved_backbone(), parent.k)
    return same == (config.mode, config.resolved_backbone(), config.k)
