"""Adapted mode on the real MiniLM: one fine-tuned backbone, K heads on its features, heads-only retrains."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from model_toydata import make_examples, pairs_of

from prefloop.model import ModelConfig, RewardEnsemble, evaluate_predictions
from prefloop.model.shared_prompt import final_layer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> tuple[RewardEnsemble, dict, ModelConfig]:
    cfg = ModelConfig(
        mode="adapted",
        k=3,
        max_length=32,
        epochs=3,
        batch_size=8,
        lr=1e-4,
        val_fraction=0.2,
        patience=3,
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    ens, report = RewardEnsemble.train(make_examples(48), cfg, progress=False)
    return ens, report, cfg


def test_adapted_learns_with_members_around_the_finetuned_head(
    adapted: tuple[RewardEnsemble, dict, ModelConfig],
) -> None:
    ens, report, _ = adapted
    assert report["adapted"] and report["adapted_on"] == 48
    test = make_examples(24, seed=9, offset=3000)
    pred = ens.predict(pairs_of(test))
    assert pred.p_a_members.shape == (24, 3)
    assert not np.allclose(pred.reward_a_members[:, 0], pred.reward_a_members[:, 1])  # bootstrap members differ
    assert evaluate_predictions(pred.p_a, [e.choice for e in test])["accuracy"] >= 0.8
    # the heads start at (and are pulled towards) the fine-tuned model's own last layer: the features
    # through that layer give the backbone's reward
    impl = ens._impl
    _pre, linear = final_layer(impl.backbone._unwrapped().model)
    fa, _ = impl.features(pairs_of(test[:4]))
    own = linear(torch.from_numpy(fa)).squeeze(-1).detach().numpy()
    ra, _ = impl.backbone.member_rewards(pairs_of(test[:4]), None)
    np.testing.assert_allclose(own, ra[:, 0], atol=1e-4)


def test_scoring_runs_the_backbone_once_per_pair(adapted: tuple[RewardEnsemble, dict, ModelConfig]) -> None:
    ens, _, _ = adapted
    pairs = pairs_of(make_examples(5, seed=4, offset=800))
    calls = []
    original = ens._impl.backbone.features
    ens._impl.backbone.features = lambda p, bar=None: calls.append(len(p)) or original(p, bar)
    try:
        first = ens.predict(pairs)
        again = ens.predict(pairs)
    finally:
        ens._impl.backbone.features = original
    assert calls == [5]  # the second prediction came from the feature cache
    assert np.array_equal(first.p_a_members, again.p_a_members)


def test_save_load_and_heads_only_retrain_until_labels_double(
    adapted: tuple[RewardEnsemble, dict, ModelConfig], tmp_path: Path
) -> None:
    ens, _, cfg = adapted
    pairs = pairs_of(make_examples(6, seed=2, offset=4000))
    ens.save(tmp_path / "m")
    loaded = RewardEnsemble.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(pairs).p_a_members, ens.predict(pairs).p_a_members, atol=1e-6)
    assert loaded.temperature == ens.temperature
    # 48 + 16 labels < 2 × 48: only the heads retrain, on the same backbone
    child, report = RewardEnsemble.train(
        make_examples(16, seed=5, offset=5000), cfg, parent=loaded, replay=make_examples(48), progress=False
    )
    assert not report["adapted"] and report["backbone_version"] == ens._impl.backbone_version
    assert child._impl.backbone is loaded._impl.backbone
    # the child's folder links the parent's backbone files instead of copying ~90 MB a version,
    # and stays whole when the parent's folder is deleted
    child.save(tmp_path / "child")
    files = sorted(p for p in (tmp_path / "m" / "adapted_backbone").rglob("*") if p.is_file())
    assert files and all(
        p.stat().st_ino
        == (tmp_path / "child" / "adapted_backbone" / p.relative_to(tmp_path / "m" / "adapted_backbone")).stat().st_ino
        for p in files
    )
    expected = child.predict(pairs).p_a_members
    shutil.rmtree(tmp_path / "m")
    np.testing.assert_allclose(RewardEnsemble.load(tmp_path / "child").predict(pairs).p_a_members, expected, atol=1e-6)
    # past 2 × 48 labelled pairs the backbone is fine-tuned again, from the previous one
    _grown, report = RewardEnsemble.train(
        make_examples(64, seed=6, offset=6000),
        dataclasses.replace(cfg, epochs=1),
        parent=child,
        replay=make_examples(48) + make_examples(16, seed=5, offset=5000),
        progress=False,
    )
    assert report["adapted"] and report["backbone_version"] != ens._impl.backbone_version
    _grown.save(tmp_path / "grown")  # a new backbone: its own files
    weights = next((tmp_path / "grown" / "adapted_backbone").rglob("*.safetensors"))
    assert weights.stat().st_nlink == 1
