"""Length-robust heads (``debias_method = "project"``) on hand-built features with known content and length.

Each response has a content score q (what the label should follow) and a length in characters;
its features are a fixed random mix of q, the length, log-length and noise, so neither signal
sits on one axis. Three worlds:

- independent: labels follow content, length is unrelated to them;
- shortcut: labels follow content, but training pairs were drawn so that the longer response
  wins 85 % of the time (as in HH data), and the test reverses that share;
- confounded: in training the longer response ALWAYS has the better content.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from prefloop.model import ModelConfig
from prefloop.model.data import PairTargets
from prefloop.model.debias_heads import LengthProjectedHead, length_directions
from prefloop.model.head_training import make_head, train_heads, warm_head
from prefloop.model.heads import RewardHead, load_heads, save_heads
from prefloop.model.tracking import MetricsLog, progress_bar

DIM = 12


def _world(n: int, seed: int, longer_wins: float | None, confounded: bool = False) -> dict[str, Any]:
    """``n`` pairs; ``longer_wins`` = share of pairs whose preferred response is the longer one (None: unrelated)."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(99).normal(size=(DIM, DIM))  # the same feature map in every world
    q = rng.normal(size=(n, 2))
    chars = rng.integers(20, 600, size=(n, 2)).astype(float)
    a_better = q[:, 0] > q[:, 1]
    if confounded or longer_wins is not None:
        share = 1.0 if confounded else longer_wins
        want_longer = rng.random(n) < share  # should the better response be the longer one?
        better_is_longer = (chars[:, 0] > chars[:, 1]) == a_better
        swap = want_longer != better_is_longer
        chars[swap] = chars[swap][:, ::-1]
    raw = np.concatenate(
        [
            q[..., None],
            (chars / 300)[..., None],
            np.log1p(chars)[..., None],
            rng.normal(size=(n, 2, DIM - 3)),
        ],
        axis=-1,
    )
    x = (raw @ mix.T).astype(np.float32)
    y = a_better.astype(float)
    pairs = [("p", "x" * int(ca), "y" * int(cb)) for ca, cb in chars]
    wins = np.stack([y, 1 - y, np.zeros(n)], axis=1)
    return {
        "xa": x[:, 0],
        "xb": x[:, 1],
        "y": y,
        "chars": chars,
        "targets": PairTargets(pairs, wins, np.zeros(n), [str(i) for i in range(n)]),
    }


def _train(world: dict[str, Any], debias: str, k: int = 2) -> list[RewardHead]:
    cfg = ModelConfig(mode="heads", head="linear", k=k, tie_model="none", debias=debias, seed=0)
    with progress_bar(False) as bar:
        heads, _reports, _oob = train_heads(
            (world["xa"], world["xb"]), world["targets"], None, None, cfg, None, MetricsLog(cfg, False), bar
        )
    return heads


@torch.no_grad()
def _score(heads: list[RewardHead], world: dict[str, Any]) -> dict[str, float]:
    xa, xb = torch.from_numpy(world["xa"]), torch.from_numpy(world["xb"])
    ra = torch.stack([h(xa) for h in heads]).mean(0).numpy()
    rb = torch.stack([h(xb) for h in heads]).mean(0).numpy()
    right = (ra > rb) == (world["y"] == 1)
    longer_won = (world["chars"][:, 0] > world["chars"][:, 1]) == (world["y"] == 1)
    rewards, chars = np.concatenate([ra, rb]), world["chars"].T.reshape(-1)
    return {
        "accuracy": float(right.mean()),
        "chosen_longer": float(right[longer_won].mean()),
        "chosen_shorter": float(right[~longer_won].mean()),
        "r_len": float(np.corrcoef(rewards, chars)[0, 1]),
    }


def test_independent_length_the_projected_head_learns_content_as_well_as_a_plain_one() -> None:
    train, test = _world(800, 1, None), _world(800, 2, None)
    plain, robust = _score(_train(train, "none"), test), _score(_train(train, "length"), test)
    assert robust["accuracy"] > 0.85, robust
    assert robust["accuracy"] >= plain["accuracy"] - 0.02, (plain, robust)
    assert abs(robust["r_len"]) < 0.1, robust


def test_a_length_shortcut_in_training_is_not_learned_by_the_projected_head() -> None:
    train, test = _world(800, 3, 0.85), _world(800, 4, 0.15)  # the test reverses the length prior
    plain, robust = _score(_train(train, "none"), test), _score(_train(train, "length"), test)
    worst = lambda s: min(s["chosen_longer"], s["chosen_shorter"])  # noqa: E731
    assert worst(robust) > worst(plain) + 0.05, (plain, robust)
    assert robust["accuracy"] > plain["accuracy"], (plain, robust)


def test_perfectly_confounded_training_shows_as_a_worst_group_far_below_overall() -> None:
    train, test = _world(800, 5, None, confounded=True), _world(800, 6, 0.5)
    plain = _score(_train(train, "none"), test)
    worst = min(plain["chosen_longer"], plain["chosen_shorter"])
    assert plain["chosen_longer"] > 0.9, plain  # where length and content agree, length looks like skill
    assert worst < plain["accuracy"] - 0.1, plain


def test_projected_linear_head_has_no_length_covariance_at_a_fixed_preference_on_its_training_pairs() -> None:
    world = _world(400, 7, 0.85)
    head = _train(world, "length", k=1)[0]
    assert isinstance(head, LengthProjectedHead)
    with torch.no_grad():
        r = torch.cat([head(torch.from_numpy(world["xa"])), head(torch.from_numpy(world["xb"]))]).double().numpy()
    chars = world["chars"].T.reshape(-1)
    preferred = np.concatenate([world["y"], 1 - world["y"]])
    design = np.stack([np.ones_like(preferred), preferred], axis=1)

    def residual(v: np.ndarray) -> np.ndarray:
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    for measure in (chars, np.log1p(chars)):
        partial = np.corrcoef(residual(r), residual(measure))[0, 1]
        assert abs(partial) < 1e-3, partial
    plain = _train(world, "none", k=1)[0]
    with torch.no_grad():
        rp = torch.cat([plain(torch.from_numpy(world["xa"])), plain(torch.from_numpy(world["xb"]))]).double().numpy()
    assert abs(np.corrcoef(residual(rp), residual(chars))[0, 1]) > 0.1  # the plain head does use length
    basis = head.basis[:, head.basis.abs().sum(0) > 0]
    assert torch.allclose(basis.T @ basis, torch.eye(basis.shape[1]), atol=1e-4)


def test_length_directions_are_zero_columns_when_length_does_not_vary() -> None:
    z = torch.randn(50, 4)
    same = torch.full((50,), 100.0)
    basis = length_directions(z[:25], z[25:], same[:25], same[25:])
    assert basis.shape == (4, 3) and float(basis.abs().sum()) == 0.0


def test_projected_heads_save_and_load_with_their_directions(tmp_path: Any) -> None:
    world = _world(200, 8, 0.85)
    heads = _train(world, "length")
    save_heads(heads, tmp_path / "h.safetensors")
    cfg = ModelConfig(mode="heads", head="linear", debias="length")
    back = load_heads(tmp_path / "h.safetensors", 2, lambda d: make_head(cfg, d))
    x = torch.from_numpy(world["xa"])
    for h, g in zip(heads, back, strict=True):
        assert torch.equal(h.basis, g.basis)
        assert torch.allclose(h(x), g(x))


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_a_plain_parent_warm_starts_a_projected_head(kind: str) -> None:
    plain = make_head(ModelConfig(mode="heads", head=kind, debias="none"), DIM)
    torch.nn.init.normal_(plain.theta.data[None], 0.3)
    robust = warm_head(plain.eval(), ModelConfig(mode="heads", head=kind, debias="length")).eval()
    assert isinstance(robust, LengthProjectedHead)  # zero basis until prepared: the parent's function
    x = torch.randn(5, DIM)
    with torch.no_grad():
        assert torch.allclose(robust(x), plain(x)) and float(robust.theta) == float(plain.theta)
    same = warm_head(plain, ModelConfig(mode="heads", head=kind, debias="none"))
    assert type(same) is RewardHead and same is not plain
