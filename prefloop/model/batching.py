"""Pairs → tokenised unique texts → length-sorted batches with dynamic padding.

Every distinct rendered input (prompt + response) is tokenised once; a batch encodes each
distinct text it contains once, even when several pairs share it (the same response in two
pairs, or one pair labelled by several annotators, which ``aggregate`` already merged).
Batches group pairs of similar length so padding stays small; their ORDER is shuffled
per epoch with a seed, and under data parallelism each process takes every world-th batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from prefloop.model.backbone import collate
from prefloop.model.render import encode, render

__all__ = ["Batch", "EncodedPairs", "count_groups", "shard_groups"]


@dataclass
class Batch:
    inputs: dict[str, torch.Tensor]  # the model's inputs, padded to the longest
    ia: torch.Tensor  # [B] where response a's reward sits in the forward's output
    ib: torch.Tensor  # [B] where response b's reward sits
    rows: np.ndarray  # [B] pair rows (into the targets)


def shard_groups(
    lengths: np.ndarray, batch_size: int, seed: int | None, rank: int = 0, world: int = 1
) -> list[np.ndarray]:
    """Rows grouped by length (longest first) into batches; group order shuffled with ``seed``.

    With ``world`` > 1 the group list is wrapped to a multiple of ``world`` (as
    DistributedSampler does) and each process takes every world-th group, so every process
    runs the same number of steps.
    """
    if len(lengths) == 0:
        return []
    order = np.argsort(-np.asarray(lengths), kind="stable")
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if seed is not None:
        perm = np.random.default_rng(seed).permutation(len(groups))
        groups = [groups[i] for i in perm]
    if world > 1:  # cycle, so that even fewer groups than processes reach every process
        padded = len(groups) + (-len(groups)) % world
        groups = [groups[i % len(groups)] for i in range(padded)][rank::world]
    return groups


def count_groups(n_rows: int, batch_size: int, world: int = 1) -> int:
    """How many batches ``shard_groups`` gives each process for ``n_rows`` rows, without building them."""
    groups = -(-n_rows // batch_size)
    return -(-groups // world)


class EncodedPairs:
    """Tokenised pairs ready for batching."""

    def __init__(
        self,
        pairs: list[tuple[str, str, str]],
        tokenizer: Any,
        template: str,
        max_length: int,
        left_pad: bool,
    ) -> None:
        uniq: dict[str, int] = {}
        items: list[Any] = []
        self.index = np.zeros((len(pairs), 2), dtype=np.int64)
        for i, (prompt, a, b) in enumerate(pairs):
            for j, resp in enumerate((a, b)):
                r = render(prompt, resp, template, tokenizer)
                if r.key not in uniq:
                    uniq[r.key] = len(items)
                    items.append(r)
                self.index[i, j] = uniq[r.key]
        self.encoded = encode(tokenizer, items, max_length, template)
        self.lengths = np.array([len(e["input_ids"]) for e in self.encoded], dtype=np.int64)
        self.pad_id = int(tokenizer.pad_token_id)
        self.left_pad = left_pad

    def __len__(self) -> int:
        return len(self.index)

    @property
    def n_scored(self) -> int:
        """Distinct texts: what ``score_batches`` scores and ``index`` points into."""
        return len(self.encoded)

    def pair_batches(self, batch_size: int, seed: int | None, rank: int = 0, world: int = 1) -> Iterator[Batch]:
        """Length-sorted pair batches, collated one at a time; order shuffled with ``seed``."""
        key = np.maximum(self.lengths[self.index[:, 0]], self.lengths[self.index[:, 1]])
        for rows in shard_groups(key, batch_size, seed, rank, world):
            yield self._batch(rows)

    def _batch(self, rows: np.ndarray) -> Batch:
        texts = np.unique(self.index[rows].ravel())
        pos = {int(t): i for i, t in enumerate(texts)}
        ia = torch.tensor([pos[int(t)] for t in self.index[rows, 0]])
        ib = torch.tensor([pos[int(t)] for t in self.index[rows, 1]])
        inputs = collate([self.encoded[t] for t in texts], self.pad_id, self.left_pad)
        return Batch(inputs, ia, ib, rows)

    def score_batches(self, batch_size: int) -> list[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        """Every unique text once, length-sorted, for scoring: (text rows, padded inputs)."""
        return [
            (rows, collate([self.encoded[t] for t in rows], self.pad_id, self.left_pad))
            for rows in shard_groups(self.lengths, batch_size, None)
        ]
