"""Fixtures of the model room's tests: toy data and a fresh embedding cache."""

from __future__ import annotations

import os

import pytest
from model_toydata import make_examples

from prefloop.model import ModelConfig, PreferenceExample

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def toy() -> list[PreferenceExample]:
    return make_examples(64)


@pytest.fixture
def heads_config(tmp_path: os.PathLike[str]) -> ModelConfig:
    return ModelConfig(mode="heads", k=3, max_length=32, cache_dir=str(tmp_path / "cache"), seed=0)
