"""Shared-prompt pairs on the real MiniLM: layout, truncation, invariances, fallback, old configs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from model_toydata import make_examples, pairs_of

import prefloop.model.finetune
from prefloop.model import ModelConfig, RewardEnsemble, default_backbone
from prefloop.model.backbone import load_backbone
from prefloop.model.shared_prompt import PairLayout, SharedPairs, check_support, collate_layouts, shared_rewards


@pytest.fixture(scope="module")
def minilm() -> tuple[Any, Any]:
    return load_backbone(ModelConfig(mode="finetune", k=1))


def test_probe_reads_bert_specials(minilm: tuple[Any, Any]) -> None:
    tok, _ = minilm
    lay = PairLayout.probe(tok, "plain", decoder=False)
    assert (lay.prefix, lay.mid, lay.suffix) == ([tok.cls_token_id], [tok.sep_token_id], [tok.sep_token_id])
    assert (lay.type_first, lay.type_second, lay.n_special) == (0, 1, 3)
    assert PairLayout.probe(tok, "chat", decoder=True).n_special == 0


def test_build_places_both_responses_at_the_same_positions() -> None:
    lay = PairLayout([101], [102], [102], 0, 1, decoder=False)
    prompt, a, b = list(range(1000, 1100)), [7] * 5, [8] * 20
    out = lay.build(prompt, [a, b], max_length=40)
    # the prompt is cut from the LEFT to fit the longer response: 40 - 3 specials - 20 = 17 tokens
    ids = out["input_ids"]
    assert ids == [101, 101, *prompt[-17:], 102, *a, 102, *b, 102]
    pos = out["position_ids"]
    assert pos[:2] == [0, 0] and pos[2:20] == list(range(1, 19))
    assert pos[20:26] == list(range(19, 25)) and pos[26:] == list(range(19, 40))  # b restarts where a started
    assert max(pos) == 39
    assert out["owner"] == [1, 2] + [0] * 18 + [1] * 6 + [2] * 21
    assert out["pool"] == [0, 1]  # each response's own [CLS]
    assert out["token_type_ids"] == [0, 0] + [0] * 18 + [1] * 27


def test_build_long_response_keeps_its_start_and_decoder_pools_last_token() -> None:
    enc = PairLayout([101], [102], [102], 0, 1, decoder=False)
    out = enc.build([5] * 30, [list(range(50)), [9]], max_length=20)
    assert out["input_ids"] == [101, 101, 102, *range(17), 102, 9, 102]  # no prompt left, first 17 tokens kept
    dec = PairLayout([], [], [], None, None, decoder=True)
    out = dec.build([1, 2, 3], [[4, 5], [6]], max_length=8)
    assert out["input_ids"] == [1, 2, 3, 4, 5, 6]
    assert out["position_ids"] == [0, 1, 2, 3, 4, 3]
    assert out["pool"] == [4, 5]


def test_mask_keeps_responses_apart() -> None:
    enc = PairLayout([101], [102], [102], 0, 1, decoder=False)
    built = [enc.build([5, 6], [[7], [8, 8]], 16), enc.build([5], [[7], [8]], 16)]
    mask = collate_layouts(built, 0, enc)["attention_mask"][0, 0]
    # layout: CLS_a CLS_b 5 6 SEP | 7 SEP | 8 8 SEP
    cls_a, cls_b, prompt, a, b = 0, 1, [2, 3, 4], [5, 6], [7, 8, 9]
    assert mask[cls_a, prompt].all() and mask[cls_a, a].all() and not mask[cls_a, b].any() and not mask[cls_a, cls_b]
    assert mask[prompt][:, prompt].all() and not mask[prompt][:, [cls_a, cls_b, *a, *b]].any()
    assert mask[b[0], cls_b] and not mask[b[0], a].any()
    padded = collate_layouts(built, 0, enc)["attention_mask"][1, 0]
    assert padded[-1, -1] and not padded[0, -1]  # padding attends only to itself, nobody attends to it


@pytest.mark.slow  # runs MiniLM on padded pair batches (~10 s loaded)
def test_pair_rewards_equal_each_response_alone(minilm: tuple[Any, Any]) -> None:
    """Sharing the prompt changes nothing for a response: in a padded batch of real HH-like pairs,
    each reward equals the one computed from that response alone with the pair's prompt window."""
    tok, model = minilm
    model.eval()
    lay = PairLayout.probe(tok, "plain", decoder=False)
    pairs = pairs_of(make_examples(5, seed=3))
    pairs.append(("Human: " + "tell me a long story " * 30, "Short.", "A much longer answer " * 8))
    enc = SharedPairs(pairs, tok, "plain", 48, lay)
    ((slots, inputs),) = enc.score_batches(16)  # 16 responses: all six pairs in one padded batch
    with torch.no_grad():
        r = shared_rewards(model, inputs).numpy()
    n = len(slots) // 2
    rows = slots[:n]
    assert n == len(pairs) and list(slots[n:]) == [len(pairs) + i for i in rows]
    for k, i in enumerate(rows):
        prompt, a, b = pairs[i]
        p_ids, a_ids, b_ids = (tok(x, add_special_tokens=False)["input_ids"] for x in (prompt, a, b))
        window, (a_ids, b_ids) = lay.truncate(p_ids, [a_ids, b_ids], 48)
        for resp, got in ((a_ids, r[k]), (b_ids, r[n + k])):
            alone = collate_layouts([lay.build(window, [resp], 48)], tok.pad_token_id, lay)
            with torch.no_grad():
                want = shared_rewards(model, alone).item()
            assert got == pytest.approx(want, abs=1e-4)


@pytest.mark.slow  # loads MiniLM with eager attention (~9 s loaded)
def test_eager_attention_gives_the_same_rewards(minilm: tuple[Any, Any]) -> None:
    """The boolean mask is turned into eager attention's additive one inside the forward."""
    from transformers import AutoModelForSequenceClassification

    tok, model = minilm
    eager = AutoModelForSequenceClassification.from_pretrained(
        default_backbone(), num_labels=1, attn_implementation="eager"
    )
    eager.load_state_dict(model.state_dict())
    eager.eval()
    lay = PairLayout.probe(tok, "plain", decoder=False)
    assert check_support(eager, tok, lay) is None
    ((_, inputs),) = SharedPairs(pairs_of(make_examples(4, seed=5)), tok, "plain", 48, lay).score_batches(8)
    with torch.no_grad():
        assert torch.allclose(shared_rewards(eager, inputs), shared_rewards(model.eval(), inputs), atol=1e-4)


def test_check_support_accepts_minilm_and_names_what_breaks(minilm: tuple[Any, Any]) -> None:
    tok, model = minilm
    assert check_support(model, tok, PairLayout.probe(tok, "plain", decoder=False)) is None
    no_cls = PairLayout([], [102], [102], 0, 1, decoder=False)
    assert "[CLS]" in str(check_support(model, tok, no_cls))
    broken = dataclasses.replace(PairLayout.probe(tok, "plain", decoder=False), decoder=True)
    # read as a decoder, BERT pools its last token: the head check fails and says so
    assert "does not reproduce" in str(check_support(model, tok, broken))


@pytest.mark.slow  # fine-tunes MiniLM (~21 s loaded)
def test_fallback_to_one_sequence_per_response_warns_and_trains(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = ModelConfig(mode="finetune", k=1, max_length=32, epochs=2, batch_size=8, lr=1e-4, val_fraction=0)
    with monkeypatch.context() as m:
        m.setattr(prefloop.model.finetune, "check_support", lambda *a: "injected: no 4D masks")
        with pytest.warns(UserWarning, match="injected: no 4D masks"):
            ens, report = RewardEnsemble.train(make_examples(24), cfg, progress=False)
    assert report["share_prompt"] is False
    assert report["train_loss"] < report["train_loss_start"]
    # the saved config states the layout the weights were trained in, so loading reads them that way
    assert ens.config.share_prompt is False
    pairs = pairs_of(make_examples(4, seed=1))
    loaded = RewardEnsemble.load(ens.save(tmp_path / "m"))
    assert np.array_equal(loaded.predict(pairs).p_a_members, ens.predict(pairs).p_a_members)


def test_a_shared_prompt_model_that_cannot_be_read_so_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = ModelConfig(mode="finetune", k=1, max_length=32, epochs=1, batch_size=8, lr=1e-4, val_fraction=0)
    ens, report = RewardEnsemble.train(make_examples(8), cfg, progress=False)
    assert report["share_prompt"] is True
    path = ens.save(tmp_path / "m")
    monkeypatch.setattr(prefloop.model.finetune, "check_support", lambda *a: "injected: no 4D masks")
    with pytest.raises(ValueError, match=r"trained on shared-prompt pairs.*injected"):
        RewardEnsemble.load(path)


@pytest.mark.slow  # fine-tunes MiniLM (~9 s loaded)
def test_models_saved_before_the_option_load_as_one_sequence_per_response(tmp_path: Path) -> None:
    cfg = ModelConfig(mode="finetune", k=1, max_length=32, epochs=1, batch_size=8, lr=1e-4, val_fraction=0)
    ex = make_examples(16)
    old, report = RewardEnsemble.train(ex, dataclasses.replace(cfg, share_prompt=False), progress=False)
    assert report["share_prompt"] is False
    old.save(tmp_path / "old")
    saved = json.loads((tmp_path / "old" / "config.json").read_text())
    del saved["share_prompt"]  # what an older prefloop wrote
    (tmp_path / "old" / "config.json").write_text(json.dumps(saved))
    loaded = RewardEnsemble.load(tmp_path / "old")
    assert loaded.config.share_prompt is False
    pairs = pairs_of(ex)
    assert np.array_equal(loaded.predict(pairs).p_a_members, old.predict(pairs).p_a_members)
    # the same weights read with the shared layout are a different function: the flag matters
    shared = RewardEnsemble.load(tmp_path / "old")
    shared._impl.shared = True
    assert not np.allclose(shared.predict(pairs).reward_a, old.predict(pairs).reward_a, atol=1e-4)
