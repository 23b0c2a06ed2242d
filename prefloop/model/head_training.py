"""Training reward heads: which head a config asks for, warm starts, the prior and the loop.

Separate from ``heads.py`` (the head itself, the embedder, saving) so that the length heads of
``debias_heads.py``, which extend ``RewardHead``, can be chosen here without an import circle.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch

from prefloop.config import ModelConfig
from prefloop.model.data import PairTargets, bootstrap_indices
from prefloop.model.debias_heads import debiased_head, uses_length_head
from prefloop.model.evaluate import pair_lengths
from prefloop.model.heads import RewardHead, one_thread
from prefloop.model.losses import tie_param_init, tie_share
from prefloop.model.tracking import MetricsLog

__all__ = ["Prior", "make_head", "train_heads", "warm_head"]


def make_head(config: ModelConfig, dim: int) -> RewardHead:
    if uses_length_head(config):
        return debiased_head(config, dim)
    return RewardHead(dim, config.head, config.head_hidden, config.head_dropout, config.tie_model)


@torch.no_grad()
def warm_head(parent: RewardHead, config: ModelConfig) -> RewardHead:
    """A copy of ``parent`` as the head ``config`` asks for, to warm-start from.

    When the debias setting changed since the parent was trained (a model trained before
    'length' became the default, say), the new kind of head takes over the parent's
    standardisation, tie parameter and every layer whose shape matches; the rest starts fresh.
    """
    head = make_head(config, int(parent.mean.shape[0]))
    if type(head) is type(parent) and head.net.state_dict().keys() == parent.net.state_dict().keys():
        return copy.deepcopy(parent)
    head.mean.copy_(parent.mean)
    head.std.copy_(parent.std)
    head.theta.copy_(parent.theta)
    theirs = parent.net.state_dict()
    for name, value in head.net.state_dict().items():
        src = theirs.get(name)
        if src is None or src.dim() != value.dim() or src.shape[1:] != value.shape[1:]:
            continue
        rows = min(len(src), len(value))  # an ODIN layer's first output row is the reward
        value[:rows].copy_(src[:rows])
    return head


def _tensors(ea: np.ndarray, eb: np.ndarray, t: PairTargets) -> tuple[torch.Tensor, ...]:
    """(xa, xb, wins, margin, chars of a, chars of b) of the pairs ``t``."""
    len_a, len_b = pair_lengths(t.pairs)
    return (
        torch.from_numpy(ea),
        torch.from_numpy(eb),
        torch.from_numpy(t.wins).float(),
        torch.from_numpy(t.margin).float(),
        torch.from_numpy(len_a).float(),
        torch.from_numpy(len_b).float(),
    )


@torch.no_grad()
def _nll(head: RewardHead, data: tuple[torch.Tensor, ...], tie_model: str) -> float:
    head.eval()
    xa, xb, w, m, len_a, len_b = data
    return float(head.pair_loss(xa, xb, w, m, len_a, len_b, tie_model, penalties=False))


@torch.no_grad()
def _held_out(head: RewardHead, data: tuple[torch.Tensor, ...], tie_model: str) -> float:
    """The early-stopping score: the held-out NLL at its best temperature (``RewardHead.held_out_loss``)."""
    head.eval()
    return float(head.held_out_loss(data, tie_model))


class Prior:
    """Gaussian prior N(w₀, 1/λ) on a head's weights (not its tie parameter), as a penalty.

    Added to the mean label NLL as λ/(2N)·||w − w₀||², N the total label weight: the MAP of
    the summed likelihood times the prior, so its pull shrinks as labels accumulate.
    """

    def __init__(self, head: RewardHead, precision: float, center: RewardHead | None, n_labels: float) -> None:
        self.scale = precision / (2.0 * max(n_labels, 1.0))
        source = center.net if center is not None else None
        self.params = list(head.net.parameters())
        self.centers = (
            [p.detach().clone() for p in source.parameters()]
            if source is not None
            else [torch.zeros_like(p) for p in self.params]
        )

    def penalty(self) -> torch.Tensor:
        return cast(
            torch.Tensor, self.scale * sum(((p - c) ** 2).sum() for p, c in zip(self.params, self.centers, strict=True))
        )


#: (head, training tensors, epoch) -> the label weights [n, 3] to train this epoch on
EpochWeights = Callable[[RewardHead, tuple[torch.Tensor, ...], int], torch.Tensor]


def _train_one(
    head: RewardHead,
    train: tuple[torch.Tensor, ...],
    val: tuple[torch.Tensor, ...] | None,
    config: ModelConfig,
    seed: int,
    on_epoch: Any,
    prior: Prior | None = None,
    epoch_weights: EpochWeights | None = None,
) -> dict[str, Any]:
    """One head, early-stopped on ``val`` (else its training loss). ``epoch_weights`` replaces the label
    weights at the start of every epoch (none of the shipped methods does; benchmarks/bench_group_dro.py)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    body = [p for p in head.parameters() if p is not head.theta]
    # the tie parameter as in finetune mode: its own rate, no decay towards ν = 1
    tie = {"params": [head.theta], "lr": config.tie_lr, "weight_decay": 0.0}
    groups: list[dict[str, Any]] = [{"params": body}, tie]
    opt = torch.optim.AdamW(groups, lr=config.resolved_lr(), weight_decay=config.weight_decay)
    xa, xb, w, m, len_a, len_b = train
    head.prepare(train, config.tie_model)
    best, best_state, bad, epochs = float("inf"), copy.deepcopy(head.state_dict()), 0, 0
    first_train = _nll(head, train, config.tie_model)
    for epoch in range(config.head_epochs):
        if epoch_weights is not None:
            w = epoch_weights(head, train, epoch)
        head.train()
        perm = torch.randperm(len(xa), generator=gen)
        for s in range(0, len(perm), config.head_batch_size):
            b = perm[s : s + config.head_batch_size]
            loss = head.pair_loss(xa[b], xb[b], w[b], m[b], len_a[b], len_b[b], config.tie_model)
            if prior is not None:
                loss = loss + prior.penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs = epoch + 1
        score = _held_out(head, val, config.tie_model) if val is not None else _nll(head, train, config.tie_model)
        on_epoch(epoch, score)
        if score < best - 1e-5:
            best, best_state, bad = score, copy.deepcopy(head.state_dict()), 0
        else:
            bad += 1
            if bad >= config.head_patience:
                break
    head.load_state_dict(best_state)
    return {
        "epochs": epochs,
        "train_loss_start": first_train,
        "train_loss": _nll(head, train, config.tie_model),
        "val_loss": best if val is not None else None,
    }


def train_heads(
    emb: tuple[np.ndarray, np.ndarray],
    train: PairTargets,
    val_emb: tuple[np.ndarray, np.ndarray] | None,
    val: PairTargets | None,
    config: ModelConfig,
    parent_heads: list[RewardHead] | None,
    log: MetricsLog,
    bar: Any,
    prior_at_parent: bool = False,
) -> tuple[list[RewardHead], list[dict[str, Any]], np.ndarray]:
    """Train ``config.k`` heads; a parent's heads (same backbone) are the warm start.

    Returns the heads, a report per member and the out-of-bag mask [n_train, K] (True where
    member k never saw pair i; all False without bootstrap) for calibration.
    """
    ea, eb = emb
    both = np.concatenate([ea, eb]) if len(ea) else np.zeros((1, ea.shape[1]), np.float32)
    mean, std = torch.from_numpy(both.mean(0)), torch.from_numpy(both.std(0) + 1e-6)
    val_t = _tensors(*val_emb, val) if val is not None and val_emb is not None else None
    heads, reports = [], []
    oob = np.zeros((len(train), config.k), dtype=bool)
    n_labels = float(train.wins.sum())
    theta0 = tie_param_init(config.tie_model, tie_share(train.wins))  # fresh heads: the labels' tie share, not 1/3
    task = bar.add_task("heads", total=config.k)
    for i in range(config.k):
        seed = config.seed + i
        torch.manual_seed(seed)
        if parent_heads is not None and i < len(parent_heads):
            head = warm_head(parent_heads[i], config)  # warm start: the parent's function, refitted scaling
            head.restandardize(mean, std)
        else:
            head = make_head(config, ea.shape[1])
            head.mean.copy_(mean)
            head.std.copy_(std)
            with torch.no_grad():
                head.theta.fill_(theta0)
        prior = None
        if config.head_prior > 0:
            prior = Prior(
                head, config.head_prior, copy.deepcopy(head) if prior_at_parent and parent_heads else None, n_labels
            )
        member_val = val_t
        if config.bootstrap and config.k > 1:
            idx = bootstrap_indices(len(train), seed)
            counts = np.bincount(idx, minlength=len(train)).astype(np.float64)
            keep = counts > 0
            oob[:, i] = ~keep
            sub = PairTargets(
                [p for p, k in zip(train.pairs, keep, strict=True) if k],
                train.wins[keep] * counts[keep, None],
                train.margin[keep],
            )
            data = _tensors(ea[keep], eb[keep], sub)
            if member_val is None and (~keep).any():  # early-stop on the pairs this member never sees
                member_val = _tensors(ea[~keep], eb[~keep], train.subset(np.flatnonzero(~keep)))
        else:
            data = _tensors(ea, eb, train)

        def on_epoch(epoch: int, score: float, i: int = i, held_out: bool = member_val is not None) -> None:
            log.log({"member": i, "epoch": epoch, "val_loss" if held_out else "train_loss": score})

        with one_thread():
            rep = _train_one(head, data, member_val, config, seed, on_epoch, prior)
        heads.append(head.eval())
        reports.append(rep)
        bar.update(task, advance=1, info=f"member {i}: {rep['epochs']} ep, loss {rep['train_loss']:.3f}")
    return heads, reports, oob
