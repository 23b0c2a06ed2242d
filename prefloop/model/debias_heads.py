"""Reward heads that keep response length out of the reward (``debias = "length"``).

``LengthProjectedHead`` ('project' and 'project_balanced', the default method) removes, before its first layer, the
directions along which the standardised features move with response length in its training
pairs, the preference held fixed: the least-squares coefficient of characters, of log(1 +
characters), and (for the pair's feature difference) of the log-length gap, each next to the
label. A linear head on what is left has no covariance with those length measures at a fixed
preference on its training pairs, so it cannot rank by length, while every other direction stays
free: the likelihood is untouched and calibration works as for a plain head.

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

__all__ = ["LENGTH_DIRECTIONS", "LengthAwareHead", "LengthProjectedHead", "debiased_head", "uses_length_head"]

#: directions projected out by 'project': chars, log(1 + chars), within-pair Δlog(1 + chars)
LENGTH_DIRECTIONS = 3


def uses_length_head(config: ModelConfig) -> bool:
    """Whether this config's heads are length heads (project, odin, conditioned) rather than plain."""
    return config.debias == "length" and config.debias_method in ("project", "project_balanced", "odin", "conditioned")


def length_directions(
    za: torch.Tensor,
    zb: torch.Tensor,
    len_a: torch.Tensor,
    len_b: torch.Tensor,
    a_wins: torch.Tensor | None = None,
    tol: float = 0.05,
) -> torch.Tensor:
    """[dim, LENGTH_DIRECTIONS] orthonormal basis of the features' length directions (zero columns if fewer).

    ``za``, ``zb``: standardised features of a and b [n, dim]; ``a_wins``: 1 where a is
    preferred, 0 where b is, 0.5 for a tie (None: no labels). Each direction is the
    coefficient of a length measure in a least-squares regression of the features on that
    measure AND the preference: the responses' features on their characters (then on
    log(1 + characters)) and whether they were preferred; the pair's feature difference on its
    log-length gap and the signed label. Holding the preference fixed keeps the content that
    made a response win out of the length direction where the two go together in the data (HH:
    the preferred answer is the shorter one in 55-60 % of pairs). A direction that adds less
    than ``tol`` of its norm to the ones before it is dropped (left a zero column).
    """
    dim = za.shape[1]
    out = torch.zeros(dim, LENGTH_DIRECTIONS, dtype=za.dtype)
    if len(za) < 4:
        return out
    won = torch.full((len(za),), 0.5, dtype=torch.float64) if a_wins is None else a_wins.double()
    z = torch.cat([za, zb]).double()
    chars = torch.cat([len_a, len_b]).double()
    preferred = torch.cat([won, 1 - won])
    dz = (za - zb).double()
    dl = (torch.log1p(len_a) - torch.log1p(len_b)).double()
    signed = 2 * won - 1
    cols = [
        _coefficient(chars, preferred, z),
        _coefficient(torch.log1p(chars), preferred, z),
        _coefficient(dl, signed, dz),
    ]
    kept: list[torch.Tensor] = []
    for c in cols:
        norm = c.norm()
        if norm <= 1e-12:
            continue
        residual = c - sum(((c @ q) * q for q in kept), torch.zeros_like(c))
        if residual.norm() > tol * norm:
            kept.append(residual / residual.norm())
    for j, q in enumerate(kept):
        out[:, j] = q.to(za.dtype)
    return out


def _coefficient(measure: torch.Tensor, label: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """[dim] coefficient of the standardised ``measure`` in features ~ 1 + measure + label (least squares)."""
    m = (measure - measure.mean()) / (measure.std() + 1e-12)
    design = torch.stack([torch.ones_like(m), m, label - label.mean()], dim=1)
    coef = torch.linalg.lstsq(design, features, driver="gelsd").solution
    return coef[1]


class LengthProjectedHead(RewardHead):
    """A reward head that sees the standardised features with their length directions removed."""

    basis: torch.Tensor

    def __init__(self, dim: int, kind: str, hidden: int, dropout: float, tie_model: str) -> None:
        super().__init__(dim, kind, hidden, dropout, tie_model)
        self.register_buffer("basis", torch.zeros(dim, LENGTH_DIRECTIONS))

    def projected(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        return z - (z @ self.basis) @ self.basis.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.projected(x)).squeeze(-1)

    @torch.no_grad()
    def prepare(self, data: tuple[torch.Tensor, ...], tie_model: str) -> None:
        """The length directions of this member's training pairs (after any restandardisation)."""
        xa, xb, wins, _m, len_a, len_b = data
        za, zb = (xa - self.mean) / self.std, (xb - self.mean) / self.std
        total = wins.sum(1).clamp_min(1e-12)
        a_wins = (wins[:, 0] + wins[:, 2] / 2) / total
        self.basis.copy_(length_directions(za, zb, len_a, len_b, a_wins))


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

    def held_out_loss(self, data: tuple[torch.Tensor, ...], tie_model: str) -> torch.Tensor:
        """Early stopping watches this head's own likelihood (r_Q + r_L, or d + β·Δℓ) without penalties."""
        xa, xb, wins, margin, len_a, len_b = data
        return self.pair_loss(xa, xb, wins, margin, len_a, len_b, tie_model, penalties=False)

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


def debiased_head(config: ModelConfig, dim: int, kind: str | None = None) -> RewardHead:
    """An empty length head of width ``dim`` for ``config`` (``kind`` overrides config.head)."""
    if config.debias_method in ("project", "project_balanced"):
        return LengthProjectedHead(dim, kind or config.head, config.head_hidden, config.head_dropout, config.tie_model)
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
def as_debiased(head: RewardHead, config: ModelConfig) -> RewardHead:
    """A linear ``head`` as a length head starting from the same weights (adapted mode's centre).

    A projected head computes the same reward once its length directions are removed. The length
    output of 'odin' starts from a small seeded random row (a zero row would give
    r_L a zero variance, where |ρ| has no gradient); β of 'conditioned' starts at 0.
    """
    torch.manual_seed(config.seed)
    mean, std = head.mean, head.std
    out = debiased_head(config, int(mean.shape[0]), kind="linear")
    out.mean.copy_(mean)
    out.std.copy_(std)
    out.theta.copy_(head.theta)
    if isinstance(out, LengthProjectedHead):
        out.net.load_state_dict(head.net.state_dict())
        return out
    assert isinstance(out, LengthAwareHead)
    src, dst = head.last_linear() if isinstance(head, LengthAwareHead) else head.net, out.last_linear()
    assert isinstance(src, nn.Linear)
    dst.weight[0].copy_(src.weight[0])
    dst.bias[0].copy_(src.bias[0])
    return out
