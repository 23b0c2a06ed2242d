"""A multi-objective model on the real MiniLM: one head ensemble per dimension, each on its own labels."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from prefloop.errors import ModelError
from prefloop.model import ModelConfig, PreferenceExample, evaluate_predictions
from prefloop.model.objectives import MultiObjectiveModel, is_multi_objective, tag_pairs
from prefloop.objectives import CombinedReward
from prefloop.types import Choice

TOPICS = ["cats", "tax", "soup", "trains", "chess", "rain", "maps", "bread"]
FILLER = "and here is a much longer answer that goes on with many more words about it, step by step, in detail"


def length_pairs(n: int, prefer: str, seed: int, offset: int = 0) -> list[PreferenceExample]:
    """Pairs of a one-line and a long answer; ``prefer`` 'long' or 'short' wins; orientation alternates."""
    rng = random.Random(seed)
    out = []
    for i in range(offset, offset + n):
        topic = rng.choice(TOPICS)
        short = f"Yes, {topic}."
        long = f"Yes, {topic}, {FILLER} number {i}."
        winner_first = i % 2 == 0
        a, b = (long, short) if (prefer == "long") == winner_first else (short, long)
        out.append(PreferenceExample(f"Tell me about {topic} ({i}).", a, b, Choice.A if winner_first else Choice.B))
    return out


def pairs_of(examples: list[PreferenceExample]) -> list[tuple[str, str, str]]:
    return [(e.prompt, e.response_a, e.response_b) for e in examples]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[MultiObjectiveModel, dict]:
    cfg = ModelConfig(mode="heads", k=3, max_length=48, cache_dir=str(tmp_path_factory.mktemp("cache")), seed=0)
    data = {"long": length_pairs(60, "long", seed=1), "short": length_pairs(40, "short", seed=2, offset=500)}
    return MultiObjectiveModel.train(data, cfg, progress=False)


def test_each_head_learns_its_own_dimension_from_its_own_labels(model: tuple[MultiObjectiveModel, dict]) -> None:
    mo, report = model
    assert mo.dimensions == ["long", "short"]
    # each head saw only its own labels: 60 and 40 pairs, not the 100 of both
    assert report["per_dimension"]["long"]["n_pairs"] == 60
    assert report["per_dimension"]["short"]["n_pairs"] == 40
    test_pairs = pairs_of(length_pairs(30, "long", seed=7, offset=2000))
    long_labels = [e.choice for e in length_pairs(30, "long", seed=7, offset=2000)]
    short_labels = [c.flipped() for c in long_labels]  # the same pairs: the other side wins
    preds = mo.predict_all(test_pairs)
    assert evaluate_predictions(preds["long"].p_a, long_labels)["accuracy"] >= 0.9
    assert evaluate_predictions(preds["short"].p_a, short_labels)["accuracy"] >= 0.9
    # the two heads prefer opposite responses on (nearly) every pair, and each has its own members and ties
    assert np.mean((preds["long"].p_a > preds["long"].p_b) != (preds["short"].p_a > preds["short"].p_b)) >= 0.9
    assert preds["long"].p_a_members.shape == (30, 3) and (preds["long"].p_tie > 0).all()
    assert set(mo.heads["long"].thetas) != set(mo.heads["short"].thetas)


def test_centred_rewards_average_zero_over_the_training_responses(model: tuple[MultiObjectiveModel, dict]) -> None:
    mo, _ = model
    train = pairs_of(length_pairs(60, "long", seed=1))
    ra, rb = mo.centred_rewards(mo.predict(train, "long"), "long")
    assert np.allclose(np.concatenate([ra, rb]).mean(axis=0), 0.0, atol=1e-6)


def test_combined_reward_by_weight_and_by_constraint(model: tuple[MultiObjectiveModel, dict]) -> None:
    mo, _ = model
    pairs = pairs_of(length_pairs(10, "long", seed=3, offset=4000))
    preds = mo.predict_all(pairs)
    only_long = mo.combine(preds, CombinedReward(weights={"long": 2.0, "short": 0.0}))
    la, lb = mo.centred_rewards(preds["long"], "long")
    assert np.allclose(only_long.reward_a_members, la) and np.allclose(only_long.p_a_members, 1 / (1 + np.exp(lb - la)))
    assert np.allclose(only_long.p_tie, 0.0)
    # maximise long subject to short ≥ 100 (never met): the hinge penalty makes the shorter answer win
    strict = mo.combine(preds, CombinedReward(maximize="long", constraints={"short": 100.0}, penalty=10.0))
    assert np.mean((strict.p_a > 0.5) == (preds["short"].p_a > preds["short"].p_b)) >= 0.9
    with pytest.raises(ModelError, match="no head for it"):
        mo.combine(preds, CombinedReward(weights={"helpful": 1.0}))


def test_save_load_round_trip_is_exact(model: tuple[MultiObjectiveModel, dict], tmp_path: Path) -> None:
    mo, _ = model
    mo.save(tmp_path / "m")
    assert is_multi_objective(tmp_path / "m")
    again = MultiObjectiveModel.load(tmp_path / "m")
    pairs = pairs_of(length_pairs(5, "long", seed=4, offset=6000))
    assert again.name == mo.name and again.dimensions == mo.dimensions
    for dim in mo.dimensions:
        assert np.allclose(again.predict(pairs, dim).p_a_members, mo.predict(pairs, dim).p_a_members)
    with pytest.raises(ModelError, match="its dimensions: long, short"):
        again.head("helpful")


def test_finetune_mode_is_refused_with_what_to_do() -> None:
    with pytest.raises(ModelError, match="--mode heads or --mode adapted"):
        MultiObjectiveModel.train({"a": length_pairs(4, "long", 0)}, ModelConfig(mode="finetune"), progress=False)


def test_adapted_mode_tags_each_pair_with_its_dimension() -> None:
    assert tag_pairs([("p", "a", "b")], "harmless") == [("p\n[harmless]", "a", "b")]


@pytest.mark.slow
def test_adapted_mode_shares_one_finetuned_backbone_across_heads(tmp_path: Path) -> None:
    cfg = ModelConfig(
        mode="adapted",
        k=2,
        max_length=48,
        epochs=2,
        batch_size=8,
        lr=1e-4,
        val_fraction=0.2,
        cache_dir=str(tmp_path / "cache"),
    )
    data = {"long": length_pairs(24, "long", seed=1), "short": length_pairs(24, "short", seed=2, offset=500)}
    mo, report = MultiObjectiveModel.train(data, cfg, progress=False)
    # one fine-tune on both dimensions' tagged labels; each dimension's heads on its own 24 pairs
    assert mo.tagged and report["shared_backbone"]["n_pairs"] == 48
    assert {d: r["n_pairs"] for d, r in report["per_dimension"].items()} == {"long": 24, "short": 24}
    # every head validates on its share of the backbone's own validation pairs, never on pairs it trained on
    assert all(e.config.val_split == "hashed" for e in mo.heads.values())
    per_dim_val = sum(r["n_val_pairs"] for r in report["per_dimension"].values())
    assert per_dim_val == report["shared_backbone"]["n_val_pairs"] > 0
    versions = {e._impl.backbone_version for e in mo.heads.values()}
    assert versions == {report["shared_backbone"]["backbone_version"]}  # the heads sit on that one backbone
    # the tag reaches the backbone even when the prompt is longer than max_length (it is cut from the left)
    long_prompt = [(" ".join(["context"] * 200) + " Tell me about cats.", "Yes, cats.", f"Yes, cats, {FILLER}.")]
    backbone = mo.heads["long"]._impl.backbone
    as_long = backbone.member_rewards(tag_pairs(long_prompt, "long"), None)[0]
    as_short = backbone.member_rewards(tag_pairs(long_prompt, "short"), None)[0]
    assert not np.allclose(as_long, as_short)
    # (48 toy pairs are too few to teach the backbone the tag-conditioned task; accuracy on real
    # data is measured by benchmarks/bench_multiobjective.py --mode adapted)
    test = pairs_of(length_pairs(6, "long", seed=7, offset=2000))
    mo.save(tmp_path / "m")
    weights = [next((tmp_path / "m" / f"head-{i}" / "adapted_backbone").rglob("*.safetensors")) for i in range(2)]
    assert weights[0].stat().st_ino == weights[1].stat().st_ino, "one copy of the shared backbone on disk"
    again = MultiObjectiveModel.load(tmp_path / "m")
    for dim in mo.dimensions:
        assert np.allclose(again.predict(test, dim).p_a_members, mo.predict(test, dim).p_a_members)
    # a retrain from it with a few more labels keeps its fine-tuned backbone (48 + 8 < 2 × 48 pairs):
    # only the heads refit, and the new version links the parent's backbone files
    more = {d: exs + length_pairs(4, d, seed=11, offset=900) for d, exs in data.items()}
    child, child_report = MultiObjectiveModel.train(more, cfg, progress=False, parent=again)
    assert child_report["shared_backbone"]["adapted"] is False
    assert child_report["shared_backbone"]["backbone_version"] == report["shared_backbone"]["backbone_version"]
    assert child.meta["parent_version"] == mo.version
    child.save(tmp_path / "child")
    linked = next((tmp_path / "child" / "head-0" / "adapted_backbone").rglob("*.safetensors"))
    assert linked.stat().st_ino == weights[0].stat().st_ino
    # other dimensions: the parent is lineage only, the backbone is fine-tuned afresh
    _, fresh_report = MultiObjectiveModel.train({"long": more["long"]}, cfg, progress=False, parent=again)
    assert fresh_report["shared_backbone"]["adapted"] is True
