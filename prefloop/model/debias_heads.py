"""Reward heads trained with a length-debiased likelihood (``debias = "length"``).

``LengthAwareHead`` is a ``RewardHead`` whose ``forward`` is the reward used at inference
(the quality reward) and whose ``pair_loss`` is the training objective of its method, see
``debias.py``: 'odin' adds a second output (the length reward) to the last linear layer,
'conditioned' the fixed weight β of a length-only expert. Both are saved with the head, so a loaded model scores exactly
as it did, and both are ignored at inference. The 'balanced' method reweights labels instead
and uses plain heads.
"""

from __future__ import annotations

import torch
from torch import nn

from prefloop.config import ModelConfig
from prefloop.model.debias import conditioned_gap, fit_length_expert, odin_penalty
from prefloop.model.heads import RewardHead
from prefloop.model.losses import pair_nll

__all__ = ["LengthAwareHead", "debiased_head", "uses_length_head"]


def uses_length_head(config: ModelConfig) -> bool:
    """Whether this config's heads carry a length term (odin, conditioned) rather than plain."""
    return config.debias == "length" and config.debias_method in ("odin", "conditioned")


class LengthAwareHead(RewardHead):
    """A reward head whose training likelihood keeps length out of the reward it returns."""

    mean: torch.Tensor
    std: torch.Tensor
    beta: torch.Tensor

    def __init__(
        self, dim: int, kind: str, hidden: int, dropout: float, tie_model: str, method: str, weight: float
    ) -> None:
        super().__init__(dim, kind, hidden, dropout, tie_model)
        if method not in ("odin", "conditioned"):
            raise ValueError(f"unknown length-debias head {method!r}; use 'odin' or 'conditioned'")
        self.method = method
        self.weight = weight
        if method == "odin":  # row 0: quality reward (the reward), row 1: length reward
            old = self.last_linear()
            two = nn.Linear(old.in_features, 2)
            with torch.no_grad():
                two.weight[0].copy_(old.weight[0])
                two.bias[0].copy_(old.bias[0])
            if isinstance(self.net, nn.Sequential):
                self.net[-1] = two
            else:
                self.net = two
        else:  # the length expert's weight: fitted on length alone before training, then fixed
            self.register_buffer("beta", torch.zeros(()))

    def prepare(self, data: tuple[torch.Tensor, ...], tie_model: str) -> None:
        """'conditioned': fit β on length alone (``fit_length_expert``) on this member's training pairs."""
        if self.method == "conditioned":
            _xa, _xb, wins, _m, len_a, len_b = data
            self.beta.fill_(fit_length_expert(wins.numpy(), len_a.numpy(), len_b.numpy(), tie_model))

    def last_linear(self) -> nn.Linear:
        last = self.net[-1] if isinstance(self.net, nn.Sequential) else self.net
        assert isinstance(last, nn.Linear)
        return last

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """[n, 2] (quality, length) rewards for 'odin'; [n] rewards for 'conditioned'."""
        out = self.net((x - self.mean) / self.std)
        return out if self.method == "odin" else out.squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.outputs(x)
        return out[..., 0] if self.method == "odin" else out

    def pair_loss(
        self,
        xa: torch.Tensor,
        xb: torch.Tensor,
        wins: torch.Tensor,
        margin: torch.Tensor,
        len_a: torch.Tensor,
        len_b: torch.Tensor,
        tie_model: str,
        penalties: bool = True,
    ) -> torch.Tensor:
        """Training NLL under r_Q + r_L (odin) or d + β·Δℓ (conditioned), plus ODIN's penalties."""
        if self.method == "conditioned":
            d = conditioned_gap(self(xa) - self(xb), self.beta, len_a, len_b)
            return pair_nll(d, wins, self.theta, tie_model, margin)
        ya, yb = self.outputs(xa), self.outputs(xb)
        loss = pair_nll(ya.sum(-1) - yb.sum(-1), wins, self.theta, tie_model, margin)
        if penalties:
            w = self.last_linear().weight
            loss = loss + odin_penalty(
                torch.cat([ya[:, 0], yb[:, 0]]),
                torch.cat([ya[:, 1], yb[:, 1]]),
                torch.cat([len_a, len_b]),
                w[0],
                w[1],
                self.weight,
            )
        return loss


def debiased_head(config: ModelConfig, dim: int, kind: str | None = None) -> LengthAwareHead:
    """An empty length-aware head of width ``dim`` for ``config`` (``kind`` overrides config.head)."""
    return LengthAwareHead(
        dim,
        kind or config.head,
        config.head_hidden,
        config.head_dropout,
        config.tie_model,
        config.debias_method,
        config.debias_weight,
    )


@torch.no_grad()
def as_debiased(head: RewardHead, config: ModelConfig) -> LengthAwareHead:
    """A linear ``head`` as a length-aware head computing the same reward (adapted mode's centre).

    The length output of 'odin' starts from a small seeded random row (a zero row would give
    r_L a zero variance, where |ρ| has no gradient); β of 'conditioned' starts at 0.
    """
    torch.manual_seed(config.seed)
    mean, std = head.mean, head.std
    out = debiased_head(config, int(mean.shape[0]), kind="linear")
    out.mean.copy_(mean)
    out.std.copy_(std)
    out.theta.copy_(head.theta)
    src, dst = head.last_linear() if isinstance(head, LengthAwareHead) else head.net, out.last_linear()
    assert isinstance(src, nn.Linear)
    dst.weight[0].copy_(src.weight[0])
    dst.bias[0].copy_(src.bias[0])
    return out
