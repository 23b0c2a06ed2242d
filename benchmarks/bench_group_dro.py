"""Issue #23: group DRO over the length groups on top of ``project_balanced`` (heads mode; a negative result).

    PREFLOOP_SHARED_DATA=../shared/data python benchmarks/bench_group_dro.py --etas 0 3 20 --json dro.jsonl

Each head (heads mode, the default MLP heads, K = 5, bootstrap members) trains with
``debias_method = "project_balanced"`` and, at the start of every epoch, exponentiated-gradient
group weights (Sagawa et al. 2020, "Distributionally robust neural networks"): the training
pairs' two length groups (chosen longer / chosen shorter by more than 10 % in characters; the
other pairs keep weight 1) each get their current mean label NLL L_g, the group weights become
q_g ∝ q_g · exp(η · L_g), and the group's label weights are scaled by 2 q_g for the epoch. η = 0
is the shipped ``project_balanced`` (same numbers as ``bench_length_robust.py``).

Settings as in ``bench_length_robust.py`` (``harmless`` = the prior reversed, ``harmless-iid`` =
a random split of the same sizes), the same metrics; one JSON line per run with its η.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_length_robust as bench

from prefloop.model import head_training
from prefloop.model.losses import pair_nll

_SHIPPED = head_training._train_one


def length_group(w: torch.Tensor, len_a: torch.Tensor, len_b: torch.Tensor) -> torch.Tensor:
    """0 = chosen longer, 1 = chosen shorter (lengths differ by > 10 %), −1 = tie, equal or near-equal."""
    a_wins, b_wins = w[:, 0] > w[:, 1], w[:, 1] > w[:, 0]
    chosen, other = torch.where(a_wins, len_a, len_b), torch.where(a_wins, len_b, len_a)
    ratio = torch.maximum(chosen, other) / torch.clamp(torch.minimum(chosen, other), min=1)
    decided = (a_wins | b_wins) & (ratio > 1.1)
    group = torch.full((len(w),), -1)
    group[decided & (chosen > other)] = 0
    group[decided & (chosen < other)] = 1
    return group


class GroupDRO:
    """``head_training.EpochWeights``: each epoch, q_g ∝ q_g · exp(η · L_g) from the groups' mean NLL under
    the head as it is, and the group's label weights scaled by 2 q_g (the other pairs keep theirs)."""

    def __init__(self, eta: float, tie_model: str) -> None:
        self.eta, self.tie_model = eta, tie_model
        self.q = torch.tensor([0.5, 0.5])

    @torch.no_grad()
    def __call__(self, head: Any, data: tuple[torch.Tensor, ...], epoch: int) -> torch.Tensor:
        xa, xb, w, m, len_a, len_b = data
        group = length_group(w, len_a, len_b)
        head.eval()
        d = head(xa) - head(xb)
        nll = [pair_nll(d[group == g], w[group == g], head.theta, self.tie_model, m[group == g]) for g in (0, 1)]
        self.q = self.q * torch.exp(self.eta * torch.stack(nll))
        self.q = self.q / self.q.sum()
        factor = torch.ones(len(w))
        factor[group == 0], factor[group == 1] = 2 * self.q[0], 2 * self.q[1]
        return w * factor[:, None]


def _with_dro(eta: float) -> Any:
    def train_one(head: Any, train: Any, val: Any, config: Any, seed: int, on_epoch: Any, prior: Any = None) -> Any:
        dro = GroupDRO(eta, config.tie_model) if eta else None  # a fresh q per head
        return _SHIPPED(head, train, val, config, seed, on_epoch, prior, epoch_weights=dro)

    return functools.wraps(_SHIPPED)(train_one)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--etas", nargs="+", type=float, default=[0.0, 3.0, 20.0])
    bench.variant_options(ap)
    args = ap.parse_args()
    for eta in args.etas:
        head_training._train_one = _with_dro(eta)
        bench.run_variant(args, "heads", "project_balanced", f"project_balanced, DRO η={eta:g}")


if __name__ == "__main__":
    main()
