"""Finetune mode on the real MiniLM backbone: full (k=1) and K LoRA adapters."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from model_toydata import make_examples, pairs_of

from prefloop.model import ModelConfig, RewardEnsemble, default_backbone, evaluate_predictions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full() -> tuple[RewardEnsemble, dict, ModelConfig]:
    cfg = ModelConfig(
        mode="finetune", k=1, max_length=32, epochs=3, batch_size=8, lr=1e-4, val_fraction=0.15, patience=3
    )
    ens, report = RewardEnsemble.train(make_examples(48), cfg, progress=False)
    return ens, report, cfg


def test_full_finetune_moves_weights_and_learns(full: tuple[RewardEnsemble, dict, ModelConfig]) -> None:
    from transformers import AutoModelForSequenceClassification

    ens, report, _ = full
    assert report["train_loss"] < 0.6 * report["train_loss_start"]
    base = AutoModelForSequenceClassification.from_pretrained(default_backbone(), num_labels=1)
    trained = ens._impl.net.model
    name = "bert.encoder.layer.0.attention.self.query.weight"
    moved = dict(trained.named_parameters())[name]
    assert not torch.allclose(moved, dict(base.named_parameters())[name])
    test = make_examples(24, seed=9, offset=3000)
    pred = ens.predict(pairs_of(test))
    assert pred.p_a_members.shape == (24, 1)
    assert np.allclose(pred.p_a + pred.p_b + pred.p_tie, 1)
    assert evaluate_predictions(pred.p_a, [e.choice for e in test])["accuracy"] >= 0.8
    # no tie label: θ started at the 1 % floor (not P(tie) = 1/3) and the model gives ties little mass
    assert ens.thetas[0] < -3 and float(pred.p_tie.max()) < 0.05


def test_full_save_load_and_warm_start(full: tuple[RewardEnsemble, dict, ModelConfig], tmp_path: Path) -> None:
    ens, _, cfg = full
    pairs = pairs_of(make_examples(6, seed=2, offset=4000))
    ens.save(tmp_path / "m")
    assert (tmp_path / "m" / "backbone" / "model.safetensors").exists()
    loaded = RewardEnsemble.load(tmp_path / "m")
    assert np.array_equal(loaded.predict(pairs).p_a_members, ens.predict(pairs).p_a_members)
    # warm start: with a learning rate of 1e-12 (0 is refused: it trains nothing) the child is its parent
    frozen = dataclasses.replace(cfg, lr=1e-12, tie_lr=1e-12, epochs=1)
    child, report = RewardEnsemble.train(
        make_examples(8, seed=5, offset=5000), frozen, parent=loaded, replay=make_examples(48), progress=False
    )
    assert report["parent_version"] == ens.version and report["n_replayed"] == 4
    assert np.allclose(child.predict(pairs).p_a_members, ens.predict(pairs).p_a_members, atol=1e-6)


def test_lora_ensemble_members(tmp_path: Path) -> None:
    cfg = ModelConfig(mode="finetune", k=2, max_length=32, epochs=2, batch_size=8, lr=2e-3, val_fraction=0)
    ens, report = RewardEnsemble.train(make_examples(32), cfg, progress=False)
    assert report["train_loss"] < report["train_loss_start"]
    pairs = pairs_of(make_examples(5, seed=1, offset=6000))
    pred = ens.predict(pairs)
    assert pred.p_a_members.shape == (5, 2)
    assert not np.allclose(pred.p_a_members[:, 0], pred.p_a_members[:, 1])
    ens.save(tmp_path / "lora")
    assert (tmp_path / "lora" / "adapters" / "m1" / "adapter_model.safetensors").exists()
    again = RewardEnsemble.load(tmp_path / "lora").predict(pairs)
    assert np.allclose(again.p_a_members, pred.p_a_members, atol=1e-6)
