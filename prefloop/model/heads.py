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
import math
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
from prefloop.model.losses import pair_nll, tie_param_init
from prefloop.model.render import Rendered, encode, render

__all__ = ["Embedder", "RewardHead", "heads_state", "load_heads", "one_thread", "save_heads"]


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
            config.resolved_gguf_file(),
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


_STOP_GRID = [float(t) for t in torch.exp(torch.linspace(0.0, math.log(20.0), 25))]  # 1 … 20, 13 % steps


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

    def held_out_loss(self, data: tuple[torch.Tensor, ...], tie_model: str) -> torch.Tensor:
        """What early stopping watches on held-out ``data`` (xa, xb, wins, margin, chars of a, chars of b):
        the pair NLL at the temperature in [1, 20] that suits it best.

        The ensemble's temperature is fitted after training, so the held-out loss worth stopping on
        is the one the head will have once softened: it stops when the ranking stops improving,
        not when the gaps grow sharper than the labels allow (the temperature takes care of that).
        """
        xa, xb, wins, margin, _len_a, _len_b = data
        d = self(xa) - self(xb)
        return torch.stack([pair_nll(d / t, wins, self.theta, tie_model, margin) for t in _STOP_GRID]).min()

    def prepare(self, data: tuple[torch.Tensor, ...], tie_model: str) -> None:
        """Fit what must be fixed before training on ``data`` (a length head's directions or β); nothing here."""

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
