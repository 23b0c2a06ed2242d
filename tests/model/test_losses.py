import math

import numpy as np
import torch

from prefloop.model.losses import log_probs, pair_nll, probs_numpy


def test_davidson_matches_formula_and_sums_to_one() -> None:
    ra, rb, nu = 0.7, -0.4, 0.8
    den = math.exp(ra) + math.exp(rb) + nu * math.exp((ra + rb) / 2)
    expected = [math.exp(ra) / den, math.exp(rb) / den, nu * math.exp((ra + rb) / 2) / den]
    got = probs_numpy(np.array([ra - rb]), math.log(nu), "davidson")[0]
    assert np.allclose(got, expected)
    lp = log_probs(torch.tensor([ra - rb]), torch.tensor(math.log(nu)), "davidson")[0].exp()
    assert np.allclose(lp.numpy(), expected, atol=1e-6)


def test_all_tie_models_give_valid_distributions() -> None:
    d = np.linspace(-8, 8, 33)
    for model in ("davidson", "rao_kupper", "none"):
        p = probs_numpy(d, 0.3, model)
        assert p.shape == (33, 3)
        assert np.all(p >= 0)
        assert np.allclose(p.sum(-1), 1)
        assert np.all(np.diff(p[:, 0]) > 0)  # P(a≻b) grows with the gap


def test_rao_kupper_formula() -> None:
    eta = math.log1p(math.exp(0.2))  # softplus(θ)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    p = probs_numpy(np.array([1.0]), 0.2, "rao_kupper")[0]
    assert np.allclose(p[:2], [sig(1 - eta), sig(-1 - eta)])


def test_nll_weighted_by_label_counts_and_margin() -> None:
    d = torch.tensor([1.0, -0.5])
    wins = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    theta = torch.tensor(0.0)
    lp = log_probs(d, theta, "davidson")
    expected = -(2 * lp[0, 0] + lp[0, 1] + lp[1, 2]) / 4
    assert torch.allclose(pair_nll(d, wins, theta, "davidson"), expected)
    # Bradley-Terry: −log σ(d − m) for a win with margin m
    bt = pair_nll(torch.tensor([1.0]), torch.tensor([[1.0, 0, 0]]), theta, "none", torch.tensor([0.5]))
    assert math.isclose(float(bt), -math.log(1 / (1 + math.exp(-0.5))), rel_tol=1e-6)
    # a tie under plain BT counts half a win each way
    tie = pair_nll(torch.tensor([0.0]), torch.tensor([[0, 0, 1.0]]), theta, "none")
    assert math.isclose(float(tie), math.log(2), rel_tol=1e-6)


def test_the_tie_parameter_starts_at_the_labels_tie_share() -> None:
    from prefloop.model.losses import MIN_TIE_SHARE, tie_param_init, tie_share

    wins = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    assert math.isclose(tie_share(wins), 0.25) and tie_share(np.zeros((0, 3))) == 0.0
    for tie_model in ("davidson", "rao_kupper"):
        for share, want in ((0.25, 0.25), (0.4, 0.4), (0.0, MIN_TIE_SHARE)):  # no ties: a small share, θ finite
            theta = torch.tensor(tie_param_init(tie_model, share))
            p_tie = log_probs(torch.zeros(1), theta, tie_model).exp()[0, 2].item()
            assert math.isclose(p_tie, want, rel_tol=1e-5), (tie_model, share, p_tie)
    # without a share: the old start, P(tie) = 1/3 for Davidson at d = 0
    assert math.isclose(
        log_probs(torch.zeros(1), torch.tensor(tie_param_init("davidson")), "davidson").exp()[0, 2].item(),
        1 / 3,
        rel_tol=1e-6,
    )
