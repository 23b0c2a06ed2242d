"""The fast audit path on the real MiniLM: packed per-response scoring gives the plain path's rewards.

The plain path scores every audited response as the pair ``(prompt, response, response)``; the
packed one puts every response of a prompt that sees the same prompt window in one sequence,
and adapted mode keeps each response's features in its cache. Both must give the same numbers.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from model_toydata import make_examples, pairs_of

from prefloop.model import ModelConfig, RewardEnsemble
from prefloop.model.audit import ensemble_scorer, run_audit
from prefloop.model.backbone import EmbeddingCache
from prefloop.model.data import pair_digest
from prefloop.model.packed import PackedResponses
from prefloop.model.probes import PROBES

pytestmark = pytest.mark.slow

# long prompts and responses of many lengths: with max_length 32 the prompt is cut to a different
# window for most responses, so packing must keep windows apart; short ones share the whole prompt
LONG_PROMPT = "Please tell me everything you know about the history of trains in the north " * 3


def _items() -> list[tuple[str, str]]:
    short = [("Tell me about cats.", r) for r in ("Cats sleep.", "Cats purr a lot.", "No.", "Cats are kind.")]
    long = [(LONG_PROMPT, "Trains " + "ran far " * n) for n in range(0, 14, 2)]
    return short + long + [("Tell me about cats.", "Cats sleep.")]  # a repeat scores the same


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> RewardEnsemble:
    cfg = ModelConfig(
        mode="adapted",
        k=2,
        max_length=32,
        epochs=1,
        batch_size=8,
        val_fraction=0.2,
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    ens, _ = RewardEnsemble.train(make_examples(24), cfg, progress=False)
    return ens


def _fresh_cache(ens: RewardEnsemble, folder: Path) -> None:
    impl = ens._impl
    namespace = dataclasses.replace(impl.config, backbone=f"adapted-{impl.backbone_version}", gguf_file=None)
    impl.cache = EmbeddingCache(folder, namespace, "head-input")


def test_packing_keeps_each_response_on_its_own_prompt_window(adapted: RewardEnsemble) -> None:
    backbone = adapted._impl.backbone
    items = _items()
    packed = PackedResponses(items, backbone.tokenizer, "plain", 32, backbone.layout, max_tokens=40)
    assert len(packed) < len(items), "responses that see the same window share a sequence"
    assert sorted(i for slots in packed.slots for i in slots) == list(range(len(items)))
    plain, _ = backbone.member_rewards([(p, r, r) for p, r in items], None)
    np.testing.assert_allclose(backbone.response_rewards(items), plain, atol=1e-5)
    features, _ = backbone.features([(p, r, r) for p, r in items])
    np.testing.assert_allclose(backbone.response_features(items), features, atol=1e-5)


def test_ensemble_response_rewards_are_the_pair_rewards_of_each_response(
    adapted: RewardEnsemble, tmp_path: Path
) -> None:
    items = _items()
    _fresh_cache(adapted, tmp_path / "a")
    plain, _ = adapted.member_rewards([(p, r, r) for p, r in items])
    _fresh_cache(adapted, tmp_path / "b")
    rewards = adapted.response_rewards(items)
    assert rewards.shape == (len(items), 2)
    np.testing.assert_allclose(rewards, plain, atol=1e-5)
    assert np.array_equal(rewards[0], rewards[-1])
    # every distinct response is in the cache now, under its (prompt, response, response) key
    assert all(adapted._impl.cache.get(pair_digest(p, r, r)) is not None for p, r in items)


def test_packed_audit_equals_the_plain_audit(adapted: RewardEnsemble, tmp_path: Path) -> None:
    examples = make_examples(12, seed=5, offset=500)
    # several pairs of one prompt, so packing has responses of one prompt to share a sequence
    pairs = pairs_of(examples) + [(examples[0].prompt, e.response_a, e.response_b) for e in examples[1:4]]
    _fresh_cache(adapted, tmp_path / "plain")
    plain = run_audit(pairs, ensemble_scorer(adapted, packed=False), resamples=200)
    _fresh_cache(adapted, tmp_path / "packed")
    packed = run_audit(pairs, ensemble_scorer(adapted), resamples=200)
    assert [p.name for p in packed.probes] == [p.name for p in PROBES]
    for new, old in zip(packed.probes, plain.probes, strict=True):
        assert new.mean_shift == pytest.approx(old.mean_shift, abs=1e-5)
        assert new.shift_beyond_length == pytest.approx(old.shift_beyond_length, abs=1e-5)
        assert new.flip_rate == old.flip_rate and new.n_flippable == old.n_flippable
    assert packed.length_correlation.r == pytest.approx(plain.length_correlation.r, abs=1e-5)
    assert packed.reward_sd == pytest.approx(plain.reward_sd, abs=1e-5)
