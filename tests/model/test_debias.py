"""Length-debiasing losses and reweighting (prefloop/model/debias.py), checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prefloop.model import ModelConfig
from prefloop.model.debias import (
    balance_by_length,
    conditioned_gap,
    fit_length_expert,
    odin_penalty,
    pearson,
)
from prefloop.model.debias_heads import LengthAwareHead, LengthProjectedHead, as_debiased, debiased_head
from prefloop.model.head_training import make_head
from prefloop.model.heads import RewardHead


def _logsig(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_pearson_by_hand() -> None:
    # x − x̄ = (−1, 0, 1), y − ȳ = (−1, 1, 0): Σ = 1, Σx² = Σy² = 2 → ρ = 1/2
    assert float(pearson(torch.tensor([1.0, 2, 3]), torch.tensor([1.0, 3, 2]))) == pytest.approx(0.5, abs=1e-6)
    assert float(pearson(torch.tensor([3.0, 1, 2]), torch.tensor([1.0, 3, 2]))) == pytest.approx(-1.0, abs=1e-6)
    # a constant reward has no correlation (and no NaN)
    assert float(pearson(torch.tensor([2.0, 2, 2]), torch.tensor([1.0, 3, 2]))) == 0.0


def test_odin_penalty_by_hand() -> None:
    length = torch.tensor([1.0, 3, 2])
    w_q, w_l = torch.tensor([1.0, 0]), torch.tensor([1.0, 1])  # |cos| = 1/√2
    # r_L ∝ length: 1 − |ρ_L| = 0; ρ_Q = 0.5 (above); λ = 2 → 2·(0 + 0.5 + 0.70711) = 2.41421
    got = odin_penalty(torch.tensor([1.0, 2, 3]), torch.tensor([1.0, 3, 2]), length, w_q, w_l, 2.0)
    assert float(got) == pytest.approx(2 * (0.5 + 1 / math.sqrt(2)), abs=1e-5)
    # the length head may anti-correlate (harmless data: longer loses): |ρ_L| = 1 again
    anti = odin_penalty(torch.tensor([1.0, 2, 3]), torch.tensor([3.0, 1, 2]), length, w_q, w_l, 2.0)
    assert float(anti) == pytest.approx(float(got), abs=1e-6)
    # nothing learned yet (r_L uncorrelated, r_Q = length, parallel weights): 1 + 1 + 1
    worst = odin_penalty(length, torch.tensor([1.0, 1, 1]), length, w_q, 3 * w_q, 1.0)
    assert float(worst) == pytest.approx(3.0, abs=1e-5)


def test_conditioned_gap_by_hand() -> None:
    # ℓ = log(1 + chars): 3 vs 1 characters → log 4 − log 2 = log 2; d' = 0.5 + 2·log 2
    got = conditioned_gap(torch.tensor([0.5]), torch.tensor(2.0), torch.tensor([3.0]), torch.tensor([1.0]))
    assert float(got[0]) == pytest.approx(0.5 + 2 * math.log(2), abs=1e-6)
    # equal lengths: the gap is untouched whatever β
    same = conditioned_gap(torch.tensor([-0.3]), torch.tensor(5.0), torch.tensor([7.0]), torch.tensor([7.0]))
    assert float(same[0]) == pytest.approx(-0.3, abs=1e-7)


def test_balance_one_bin_by_hand() -> None:
    la = np.array([10.0, 10, 10, 5, 5, 10])
    lb = np.array([5.0, 5, 5, 10, 5, 5])
    wins = np.array([[1.0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1]])
    # longer wins in pairs 0–2 (L = 3), shorter in pair 3 (S = 1); each side → (L + S)/2 = 2
    out = balance_by_length(wins, la, lb, n_bins=1)
    assert out[:3, 0] == pytest.approx([2 / 3] * 3)
    assert out[3, 0] == pytest.approx(2.0)
    assert out[4].tolist() == [1, 0, 0]  # equal lengths: unchanged
    assert out[5].tolist() == [0, 0, 1]  # a tie: unchanged
    assert out.sum() == pytest.approx(wins.sum())


def test_balance_two_bins_and_soft_labels_by_hand() -> None:
    # |Δ log(1 + len)|: pairs 0, 1 → log 2; pairs 2–4 → log 10; the median log 10 splits the bins
    la = np.array([9.0, 4, 99, 99, 9])
    lb = np.array([4.0, 9, 9, 9, 99])
    wins = np.array([[1.0, 0, 0], [1, 0, 0], [1, 0, 0], [2, 1, 0], [1, 0, 0]])
    out = balance_by_length(wins, la, lb, n_bins=2)
    assert out[:2].tolist() == wins[:2].tolist()  # bin 0: one longer, one shorter win — already balanced
    # bin 1: longer wins 1 + 2 = 3, shorter wins 1 (pair 3's b) + 1 (pair 4's a) = 2; each → 2.5
    assert out[2, 0] == pytest.approx(2.5 / 3)
    assert out[3, 0] == pytest.approx(2 * 2.5 / 3)
    assert out[3, 1] == pytest.approx(2.5 / 2)
    assert out[4, 0] == pytest.approx(2.5 / 2)


def test_response_lengths_are_characters() -> None:
    from prefloop.model.evaluate import pair_lengths  # the one length every debias method and eval use

    la, lb = pair_lengths([("prompt is not counted", "abc", "hello world")])
    assert la.tolist() == [3.0] and lb.tolist() == [11.0]


def _odin_linear() -> LengthAwareHead:
    cfg = ModelConfig(mode="heads", head="linear", tie_model="none", debias="length", debias_method="odin")
    head = debiased_head(cfg, 2)
    with torch.no_grad():
        head.last_linear().weight.copy_(torch.eye(2))  # r_Q = x₀, r_L = x₁
        head.last_linear().bias.zero_()
    return head


def test_odin_head_loss_by_hand() -> None:
    head = _odin_linear()
    xa, xb = torch.tensor([[2.0, 1], [0, 3]]), torch.tensor([[1.0, 0], [1, 1]])
    assert head(xa).tolist() == [2.0, 0.0]  # inference: the quality reward only
    wins = torch.tensor([[1.0, 0, 0], [0, 1, 0]])
    len_a, len_b = torch.tensor([10.0, 30]), torch.tensor([0.0, 10])
    # r_Q + r_L: a = (3, 3), b = (1, 2) → d = (2, 1); NLL = −(log σ(2) + log σ(−1)) / 2
    nll = -(_logsig(2) + _logsig(-1)) / 2
    no_pen = head.pair_loss(xa, xb, wins, torch.zeros(2), len_a, len_b, "none", penalties=False)
    assert float(no_pen.detach()) == pytest.approx(nll, abs=1e-6)
    # responses (a₁, a₂, b₁, b₂): r_L = (1, 3, 0, 1) ∝ length → 0; r_Q = (2, 0, 1, 1):
    # ρ_Q = −20 / √(2·475); w_Q ⟂ w_L → 0
    rho_q = 20 / math.sqrt(2 * 475)
    full = head.pair_loss(xa, xb, wins, torch.zeros(2), len_a, len_b, "none")
    assert float(full.detach()) == pytest.approx(nll + rho_q, abs=1e-5)


def test_conditioned_head_loss_by_hand() -> None:
    cfg = ModelConfig(mode="heads", head="linear", tie_model="none", debias="length", debias_method="conditioned")
    head = debiased_head(cfg, 1)
    with torch.no_grad():
        head.last_linear().weight.fill_(1.0)
        head.last_linear().bias.zero_()
        head.beta.fill_(-1.0)
    xa, xb = torch.tensor([[1.0]]), torch.tensor([[0.5]])
    # d = 0.5; a has 3 chars, b 1: d' = 0.5 − log 2; label a wins
    loss = head.pair_loss(
        xa, xb, torch.tensor([[1.0, 0, 0]]), torch.zeros(1), torch.tensor([3.0]), torch.tensor([1.0]), "none"
    )
    assert float(loss.detach()) == pytest.approx(-_logsig(0.5 - math.log(2)), abs=1e-6)
    assert float(head(xa)[0].detach()) == pytest.approx(1.0)  # β is not part of the reward


def test_make_head_follows_the_config() -> None:
    plain = make_head(ModelConfig(mode="heads", debias="none"), 4)
    assert type(plain) is RewardHead
    assert type(make_head(ModelConfig(mode="heads"), 4)) is RewardHead  # debias 'none' by default
    projected = make_head(ModelConfig(mode="heads", debias="length"), 4)
    assert isinstance(projected, LengthProjectedHead)  # 'project_balanced' (projected heads) is the default method
    bal = make_head(ModelConfig(mode="heads", debias="length", debias_method="balanced"), 4)
    assert type(bal) is RewardHead  # balanced reweights labels, the head is plain
    odin = make_head(ModelConfig(mode="heads", debias="length", debias_method="odin"), 4)
    assert isinstance(odin, LengthAwareHead) and odin.last_linear().out_features == 2


def test_as_debiased_keeps_the_reward() -> None:
    torch.manual_seed(0)
    plain = RewardHead(3, "linear", 1, 0.0, "davidson")
    plain.restandardize(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([1.0, 2.0, 0.5]))
    x = torch.randn(5, 3)
    for method in ("odin", "conditioned", "project"):  # project: its directions are empty until fitted
        cfg = ModelConfig(mode="heads", head="linear", debias="length", debias_method=method)
        head = as_debiased(plain, cfg)
        assert torch.allclose(head(x), plain(x), atol=1e-6)
        assert head.theta.item() == plain.theta.item()


def test_length_expert_is_the_maximum_likelihood_by_hand() -> None:
    # one pair, a (3 chars) beat b (1 char) 3 times out of 4: σ(β·log 2) = 3/4 → β = log 3 / log 2
    beta = fit_length_expert(np.array([[3.0, 1, 0]]), np.array([3.0]), np.array([1.0]), "none")
    assert beta == pytest.approx(math.log(3) / math.log(2), abs=1e-4)
    # the orientation of a pair does not matter: the same pair written as (b, a) gives the same β
    flipped = fit_length_expert(np.array([[1.0, 3, 0]]), np.array([1.0]), np.array([3.0]), "none")
    assert flipped == pytest.approx(beta, abs=1e-4)
    # no length difference: nothing to fit
    assert fit_length_expert(np.array([[1.0, 0, 0]]), np.array([4.0]), np.array([4.0]), "davidson") == 0.0


def test_conditioned_head_fits_its_expert_before_training() -> None:
    cfg = ModelConfig(mode="heads", head="linear", tie_model="none", debias="length", debias_method="conditioned")
    head = debiased_head(cfg, 1)
    data = (torch.zeros(1, 1), torch.zeros(1, 1), torch.tensor([[3.0, 1, 0]]), torch.zeros(1))
    head.prepare((*data, torch.tensor([3.0]), torch.tensor([1.0])), "none")
    assert head.beta.item() == pytest.approx(math.log(3) / math.log(2), abs=1e-4)
    assert "beta" in head.state_dict(), "saved with the head, so a loaded model is the same model"


def test_which_labels_each_length_method_reweights_in_each_mode() -> None:
    from prefloop.model.debias import heads_balanced
    from prefloop.model.ensemble import reweights_labels

    def both(mode: str, method: str) -> tuple[bool, bool]:
        cfg = ModelConfig(mode=mode, debias="length", debias_method=method)
        return reweights_labels(cfg), heads_balanced(cfg)

    assert both("heads", "project_balanced") == (True, False)  # every label, the heads being the model
    assert both("adapted", "project_balanced") == (False, True)  # the heads' labels only, not the backbone's
    assert both("finetune", "project_balanced") == (True, False)  # no heads: as 'balanced'
    assert both("heads", "project") == (False, False) and both("adapted", "project") == (False, False)
    assert both("finetune", "project") == (True, False) and both("adapted", "balanced") == (True, False)
    off = ModelConfig(mode="adapted", debias="none", debias_method="project_balanced")
    assert not reweights_labels(off) and not heads_balanced(off)
