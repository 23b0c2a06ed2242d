"""Heads mode: a frozen backbone embeds each rendered text once; K small heads learn rewards.

Each head maps a pooled embedding to a scalar reward and owns its tie parameter θ. Member i
trains on a bootstrap resample of the training pairs with seed ``seed + i`` and stops early,
keeping its best epoch, on held-out log-loss: its out-of-bag pairs (the ~37 % its resample
left out) when no validation split is given, else the shared validation split. A Gaussian
prior on the head's weights (``head_prior``; centred at zero, or at the parent's weights when
a retrain sees only part of the old labels) keeps a head from fitting noise in the 20–80
labels a milestone brings; its pull fades as 1/n as labels accumulate.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from prefloop.config import ModelConfig
from prefloop.errors import ModelError
from prefloop.model.backbone import (
    EmbeddingCache,
    autocast,
    collate,
    is_decoder,
    length_sorted_batches,
    load_backbone,
    pool,
)
from prefloop.model.data import PairTargets, bootstrap_indices
from prefloop.model.evaluate import pair_lengths
from prefloop.model.losses import pair_nll, tie_param_init
from prefloop.model.render import Rendered, encode, render
from prefloop.model.tracking import MetricsLog

__all__ = ["Embedder", "Prior", "RewardHead", "load_heads", "save_heads", "train_heads"]


_SHARED: dict[tuple[object, ...], Embedder] = {}


class Embedder:
    """Frozen backbone → pooled embedding per rendered text, memoised in memory and on disk.

    ``Embedder.shared(config)`` returns one instance per backbone/input settings in this
    process, so repeated trainings (active-learning rounds) load the backbone once.
    """

    @classmethod
    def shared(cls, config: ModelConfig) -> Embedder:
        key = (
            config.resolved_backbone(),
            config.gguf_file,
            config.max_length,
            config.template,
            config.pooling,
            config.bf16,
            # absolute: one process may train from several working directories (a notebook, the tests)
            config.cache_dir and os.path.abspath(config.cache_dir),
            config.embed_batch_size,
        )
        if key not in _SHARED:
            if len(_SHARED) >= 2:  # keep memory bounded: one backbone is ~100 MB to GBs
                _SHARED.pop(next(iter(_SHARED)))
            _SHARED[key] = cls(config)
        return _SHARED[key]

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.tokenizer, model = load_backbone(config)
        self.model = model.base_model.eval()
        self.decoder = is_decoder(model.config)
        how = config.pooling
        self.pooling = ("last" if self.decoder else "mean") if how == "auto" else how
        self.cache = EmbeddingCache(config.cache_dir, config, self.pooling)
        self.memory: dict[str, np.ndarray] = {}
        self.dim = int(model.config.hidden_size)
        self.n_encoded = 0  # texts actually run through the backbone (for tests/benchmarks)

    def render_pairs(self, pairs: list[tuple[str, str, str]]) -> tuple[list[Rendered], np.ndarray]:
        """Unique rendered inputs and an index [n, 2] of (a, b) rows into them."""
        uniq: dict[str, int] = {}
        items: list[Rendered] = []
        index = np.zeros((len(pairs), 2), dtype=np.int64)
        for i, (prompt, a, b) in enumerate(pairs):
            for j, resp in enumerate((a, b)):
                r = render(prompt, resp, self.config.template, self.tokenizer)
                if r.key not in uniq:
                    uniq[r.key] = len(items)
                    items.append(r)
                index[i, j] = uniq[r.key]
        return items, index

    @torch.no_grad()
    def embed(self, items: list[Rendered], bar: Any = None) -> np.ndarray:
        """[len(items), d] float32 embeddings; only texts never seen before reach the backbone."""
        todo = [r for r in items if r.key not in self.memory]
        for r in todo:
            hit = self.cache.get(r.key)
            if hit is not None:
                self.memory[r.key] = hit
        todo = list({r.key: r for r in items if r.key not in self.memory}.values())
        if todo:
            enc = encode(self.tokenizer, todo, self.config.max_length, self.config.template)
            batches = length_sorted_batches([len(e["input_ids"]) for e in enc], self.config.embed_batch_size)
            task = bar.add_task("embed", total=len(todo)) if bar is not None else None
            dev = next(self.model.parameters()).device
            for b in batches:
                inputs = collate([enc[i] for i in b], self.tokenizer.pad_token_id, self.decoder)
                inputs = {k: v.to(dev) for k, v in inputs.items()}
                with autocast(self.config.bf16, dev):
                    hidden = self.model(**inputs).last_hidden_state
                vec = pool(hidden.float(), inputs["attention_mask"], self.pooling).cpu().numpy()
                for i, v in zip(b, vec, strict=True):
                    self.memory[todo[i].key] = v
                    self.cache.put(todo[i].key, v)
                self.n_encoded += len(b)
                if bar is not None:
                    bar.update(task, advance=len(b))
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.memory[r.key] for r in items]).astype(np.float32)

    def embed_pairs(self, pairs: list[tuple[str, str, str]], bar: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(embedding of a [n, d], embedding of b [n, d])."""
        items, index = self.render_pairs(pairs)
        emb = self.embed(items, bar)
        if len(pairs) == 0:
            return emb, emb
        return emb[index[:, 0]], emb[index[:, 1]]


class RewardHead(nn.Module):
    """Standardised embedding → reward (linear or one hidden layer), plus tie parameter θ."""

    mean: torch.Tensor  # buffers, registered below (torch types them as Tensor | Module)
    std: torch.Tensor

    def __init__(self, dim: int, kind: str, hidden: int, dropout: float, tie_model: str) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        if kind == "linear":
            self.net: nn.Module = nn.Linear(dim, 1)
        elif kind == "mlp":
            self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1))
        else:
            raise ModelError(f"unknown head {kind!r}; use 'linear' or 'mlp' ([model] head)")
        self.theta = nn.Parameter(torch.tensor(tie_param_init(tie_model)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std).squeeze(-1)

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
        """Training loss on a batch; response lengths are for length-debiased heads (debias_heads.py)."""
        return pair_nll(self(xa) - self(xb), wins, self.theta, tie_model, margin)

    def prepare(self, data: tuple[torch.Tensor, ...], tie_model: str) -> None:
        """Fit what must be fixed before training on ``data`` (a length-debiased head's β); nothing here."""

    @torch.no_grad()
    def restandardize(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Switch to new input statistics without changing the function the head computes.

        A warm start inherits the parent's standardisation, fitted on the parent's (often
        tiny) training set; refitting it on the data at hand and folding the change into the
        first layer (W' = W·s'/s, b' = b + W(m' − m)/s) keeps the parent's predictions while
        the optimiser sees well-scaled inputs again.
        """
        first = self.net if isinstance(self.net, nn.Linear) else cast(nn.Linear, cast(nn.Sequential, self.net)[0])
        first.bias.add_(first.weight @ ((mean - self.mean) / self.std))
        first.weight.mul_(std / self.std)
        self.mean.copy_(mean)
        self.std.copy_(std)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Heads are tiny: thread hand-offs cost more than the maths (20× on a busy 2-core box)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def make_head(config: ModelConfig, dim: int) -> RewardHead:
    from prefloop.model.debias_heads import debiased_head, uses_length_head

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


def heads_state(heads: list[RewardHead]) -> dict[str, torch.Tensor]:
    """Every member's tensors under ``m{i}.<name>`` (one safetensors file holds the ensemble)."""
    return {f"m{i}.{k}": v for i, h in enumerate(heads) for k, v in h.state_dict().items()}


def save_heads(heads: list[RewardHead], path: Any) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in heads_state(heads).items()}, str(path))


def load_heads(path: Any, k: int, make: Any) -> list[RewardHead]:
    """Inverse of ``save_heads``; ``make(dim)`` builds an empty head of the saved width."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    heads = []
    for i in range(k):
        sub = {name.split(".", 1)[1]: v for name, v in state.items() if name.startswith(f"m{i}.")}
        head = make(int(sub["mean"].shape[0]))
        head.load_state_dict(sub)
        heads.append(head.eval())
    return heads


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


def _train_one(
    head: RewardHead,
    train: tuple[torch.Tensor, ...],
    val: tuple[torch.Tensor, ...] | None,
    config: ModelConfig,
    seed: int,
    on_epoch: Any,
    prior: Prior | None = None,
) -> dict[str, Any]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(head.parameters(), lr=config.resolved_lr(), weight_decay=config.weight_decay)
    xa, xb, w, m, len_a, len_b = train
    head.prepare(train, config.tie_model)
    best, best_state, bad, epochs = float("inf"), copy.deepcopy(head.state_dict()), 0, 0
    first_train = _nll(head, train, config.tie_model)
    for epoch in range(config.head_epochs):
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
        score = _nll(head, val if val is not None else train, config.tie_model)
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
