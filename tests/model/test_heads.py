"""Heads mode on the real MiniLM backbone (frozen) with a learnable toy task."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from model_toydata import make_examples, pairs_of

from prefloop.model import ModelConfig, RewardEnsemble, evaluate_predictions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[RewardEnsemble, dict, ModelConfig]:
    cache = tmp_path_factory.mktemp("cache")
    cfg = ModelConfig(mode="heads", k=3, max_length=32, cache_dir=str(cache), seed=0, val_fraction=0.2)
    ens, report = RewardEnsemble.train(make_examples(64), cfg, progress=False)
    return ens, report, cfg


def test_training_lowers_loss_and_learns(trained: tuple[RewardEnsemble, dict, ModelConfig]) -> None:
    ens, report, _ = trained
    assert report["train_loss"] < 0.5 * report["train_loss_start"]
    test = make_examples(40, seed=7, offset=1000)
    pred = ens.predict(pairs_of(test))
    m = evaluate_predictions(pred.p_a, [e.choice for e in test], p_tie=pred.p_tie)
    assert m["accuracy"] >= 0.85, m


def test_prediction_shapes_and_valid_probabilities(trained: tuple[RewardEnsemble, dict, ModelConfig]) -> None:
    ens, _, _ = trained
    pairs = pairs_of(make_examples(7, seed=3, offset=500))
    pred = ens.predict(pairs)
    for arr in (pred.p_a_members, pred.p_b_members, pred.p_tie_members, pred.reward_a_members):
        assert arr.shape == (7, 3)
    total = pred.p_a_members + pred.p_b_members + pred.p_tie_members
    assert np.allclose(total, 1.0)
    assert np.allclose(pred.p_a + pred.p_b + pred.p_tie, 1.0)
    assert pred.spread.shape == (7,) and np.all(pred.spread >= 0)
    # swapping a and b swaps the probabilities
    swapped = ens.predict([(p, b, a) for p, a, b in pairs])
    assert np.allclose(swapped.p_a_members, pred.p_b_members)
    assert ens.embed_pairs(pairs).shape == (7, 2 * 384)


def test_members_differ_and_seed_reproduces(trained: tuple[RewardEnsemble, dict, ModelConfig]) -> None:
    ens, report, cfg = trained
    pred = ens.predict(pairs_of(make_examples(5, seed=4, offset=800)))
    assert not np.allclose(pred.reward_a_members[:, 0], pred.reward_a_members[:, 1])  # bootstrap resamples
    _again, report2 = RewardEnsemble.train(make_examples(64), cfg, progress=False)
    assert report2["version"] == report["version"]
    assert report2["texts_encoded"] == 0  # every text came from the on-disk cache


def test_save_load_identical(trained: tuple[RewardEnsemble, dict, ModelConfig], tmp_path: Path) -> None:
    ens, _, _ = trained
    ens.save(tmp_path / "m")
    assert (tmp_path / "m" / "heads.safetensors").exists() and (tmp_path / "m" / "config.json").exists()
    loaded = RewardEnsemble.load(tmp_path / "m")
    pairs = pairs_of(make_examples(6, seed=5, offset=900))
    a, b = ens.predict(pairs), loaded.predict(pairs)
    assert np.array_equal(a.p_a_members, b.p_a_members) and np.array_equal(a.p_tie, b.p_tie)
    assert loaded.version == ens.version and loaded.config == ens.config


def test_incremental_warm_starts_from_parent(trained: tuple[RewardEnsemble, dict, ModelConfig]) -> None:
    parent, _, cfg = trained
    old, new = make_examples(64), make_examples(8, seed=11, offset=2000)
    # lr 1e-12 (0 is refused: it trains nothing): the child can only be its starting point (no
    # temperature, so raw rewards compare)
    frozen = dataclasses.replace(cfg, lr=1e-12, calibrate=False, replay_fraction=0.5)
    child, report = RewardEnsemble.train(new, frozen, parent=parent, replay=old, progress=False)
    assert report["parent_version"] == parent.version and child.parent_version == parent.version
    assert report["n_replayed"] == 4 and report["n_examples"] == 12
    pairs = pairs_of(new)
    # the child starts as the parent's function (its input scaling is refitted, the maths folded in)
    raw_parent = parent.member_rewards(pairs)[0] * parent.temperature
    np.testing.assert_allclose(child.member_rewards(pairs)[0], raw_parent, atol=1e-5)
    fresh, _ = RewardEnsemble.train(new, frozen, progress=False)
    assert not np.allclose(fresh.member_rewards(pairs)[0], raw_parent)
    # heads mode replays every old label by default, as a fresh fit: the same model as training
    # from scratch on old + new, with the parent kept as lineage only
    refit, full = RewardEnsemble.train(new, cfg, parent=parent, replay=old, progress=False)
    assert full["n_replayed"] == 64 and full["n_examples"] == 72 and refit.parent_version == parent.version
    scratch, _ = RewardEnsemble.train(new + old, cfg, progress=False)
    np.testing.assert_allclose(refit.member_rewards(pairs)[0], scratch.member_rewards(pairs)[0], atol=1e-6)
    # with a learning rate the child moves away from the parent
    child2, _ = RewardEnsemble.train(new, cfg, parent=parent, replay=old, progress=False)
    assert child2.version != parent.version


def test_tie_labels_raise_tie_probability(tmp_path: Path) -> None:
    from prefloop.model import PreferenceExample
    from prefloop.types import Choice

    ex = make_examples(40)
    ties = [PreferenceExample(e.prompt, e.response_a, e.response_a + " Indeed.", Choice.TIE) for e in ex]
    cfg = ModelConfig(mode="heads", k=1, max_length=32, cache_dir=str(tmp_path), val_fraction=0)
    none, _ = RewardEnsemble.train(ex, cfg, progress=False)
    with_ties, _ = RewardEnsemble.train(ex + ties, cfg, progress=False)
    assert with_ties.thetas[0] > none.thetas[0]  # ν grows when ties are observed


def test_heads_trained_without_ties_predict_few_ties(tmp_path: Path) -> None:
    """The tie parameter starts at the labels' tie share and learns at tie_lr: a model trained on labels with no
    tie gives ties little mass, where it once kept P(tie) ≈ 1/3 at d = 0 (ν stuck near 1)."""
    ex = make_examples(40)
    cfg = ModelConfig(mode="heads", k=2, max_length=32, cache_dir=str(tmp_path))
    ens, _ = RewardEnsemble.train(ex, cfg, progress=False)
    pred = ens.predict(pairs_of(make_examples(10, seed=3)))
    assert float(pred.p_tie.max()) < 0.05


def test_restandardize_keeps_the_function() -> None:

    from prefloop.model.heads import RewardHead

    torch.manual_seed(0)
    for kind in ("linear", "mlp"):
        head = RewardHead(8, kind, 16, 0.0, "davidson").eval()
        head.mean.copy_(torch.randn(8))
        head.std.copy_(torch.rand(8) + 0.5)
        x = torch.randn(32, 8)
        before = head(x)
        head.restandardize(torch.randn(8), torch.rand(8) + 0.1)
        assert torch.allclose(head(x), before, atol=1e-4)


def test_a_relative_cache_dir_stays_where_it_was_configured_when_the_process_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefloop.model.heads import Embedder

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    cfg = ModelConfig(mode="heads", max_length=32, cache_dir="cache")
    monkeypatch.chdir(first)
    Embedder.shared(cfg).embed_pairs([("p", "one", "two")])
    monkeypatch.chdir(second)
    embedder = Embedder.shared(cfg)
    a, _ = embedder.embed_pairs([("p", "three", "four")])  # once raised FileNotFoundError: a relative cache
    assert a.shape == (1, embedder.dim)
    assert len(list((first / "cache").rglob("*.npy"))) == 2, "one, two"
    assert len(list((second / "cache").rglob("*.npy"))) == 2, "three, four: this folder's cache_dir"


def test_early_stopping_watches_the_held_out_loss_at_its_best_temperature() -> None:
    """A head made ten times too sharp keeps its ranking: the loss early stopping watches (NLL at the best
    T in [1, 20], since T is fitted after training) barely moves, while the raw NLL grows."""
    from prefloop.model.heads import _STOP_GRID, RewardHead
    from prefloop.model.losses import pair_nll

    torch.manual_seed(0)
    head = RewardHead(4, "linear", 1, 0.0, "none")
    x = torch.randn(400, 4)
    xa, xb = x[:200], x[200:]
    with torch.no_grad():
        truth = head(xa) - head(xb)
        a_wins = torch.rand(200) < torch.sigmoid(truth)
    wins = torch.stack([a_wins.float(), (~a_wins).float(), torch.zeros(200)], dim=1)
    margin, lens = torch.zeros(200), torch.ones(200)
    with torch.no_grad():
        data = (xa, xb, wins, margin, lens, lens)
        calm = head.held_out_loss(data, "none")
        raw_calm = head.pair_loss(xa, xb, wins, margin, lens, lens, "none")
        head.net.weight.mul_(10.0)
        head.net.bias.mul_(10.0)
        sharp = head.held_out_loss(data, "none")
        raw_sharp = head.pair_loss(xa, xb, wins, margin, lens, lens, "none")
        d = head(xa) - head(xb)
        want = min(float(pair_nll(d / t, wins, head.theta, "none", margin)) for t in _STOP_GRID)
    assert abs(float(sharp) - want) < 1e-6
    assert float(calm) <= float(raw_calm) + 1e-6  # T = 1 is on the grid
    assert float(raw_sharp) > float(raw_calm) + 0.2  # the raw NLL punishes the sharper head …
    assert abs(float(sharp) - float(calm)) < 0.02  # … the softened one hardly at all (same ranking)
