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
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_length_robust as bench
from length_splits import build_setting

from prefloop.model import head_training
from prefloop.model.losses import pair_nll

_SHIPPED = head_training._train_one
ETA = 0.0  # set by main() for each run


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


def _train_one_dro(
    head: Any, train: Any, val: Any, config: Any, seed: int, on_epoch: Any, prior: Any = None
) -> dict[str, Any]:
    """``head_training._train_one`` with the group weights above (η = ``ETA``)."""
    if ETA == 0:
        return _SHIPPED(head, train, val, config, seed, on_epoch, prior)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(head.parameters(), lr=config.resolved_lr(), weight_decay=config.weight_decay)
    xa, xb, w, m, len_a, len_b = train
    head.prepare(train, config.tie_model)
    group = length_group(w, len_a, len_b)
    q = torch.tensor([0.5, 0.5])
    best, best_state, bad, epochs = float("inf"), copy.deepcopy(head.state_dict()), 0, 0
    first = head_training._nll(head, train, config.tie_model)
    for epoch in range(config.head_epochs):
        with torch.no_grad():
            head.eval()
            d = head(xa) - head(xb)
            losses = torch.stack(
                [pair_nll(d[group == g], w[group == g], head.theta, config.tie_model, m[group == g]) for g in (0, 1)]
            )
            q = q * torch.exp(ETA * losses)
            q = q / q.sum()
        factor = torch.ones(len(w))
        factor[group == 0], factor[group == 1] = 2 * q[0], 2 * q[1]
        weighted = w * factor[:, None]
        head.train()
        perm = torch.randperm(len(xa), generator=gen)
        for s in range(0, len(perm), config.head_batch_size):
            b = perm[s : s + config.head_batch_size]
            loss = head.pair_loss(xa[b], xb[b], weighted[b], m[b], len_a[b], len_b[b], config.tie_model)
            if prior is not None:
                loss = loss + prior.penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs = epoch + 1
        score = head_training._nll(head, val if val is not None else train, config.tie_model)
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
        "train_loss_start": first,
        "train_loss": head_training._nll(head, train, config.tie_model),
        "val_loss": best if val is not None else None,
    }


head_training._train_one = _train_one_dro


def main() -> None:
    global ETA
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--etas", nargs="+", type=float, default=[0.0, 3.0, 20.0])
    ap.add_argument("--settings", nargs="+", choices=bench.SETTINGS, default=["harmless", "harmless-iid"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--max-train", type=int, default=1500, help="cap on helpful training pairs")
    ap.add_argument("--cache-dir", default=None, help="embedding cache (default: ~/.cache/prefloop/bench)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = args.cache_dir or str(Path.home() / ".cache" / "prefloop" / "bench")
    opts = argparse.Namespace(k=None, epochs=None, cache_dir=cache)
    for eta in args.etas:
        ETA = eta
        for setting in args.settings:
            for seed in args.seeds:
                train, test, _info = build_setting(setting, seed, args.max_train if setting == "helpful" else 0)
                result = bench._run_prefloop("heads", "project_balanced", train, test, seed, opts, {})
                row = {"setting": setting, "seed": seed, "mode": "heads", "method": f"project_balanced, DRO η={eta:g}"}
                row |= {"n_train": len(train), "n_test": len(test), **result}
                print(json.dumps(row, default=str), flush=True)
                if args.json:
                    with args.json.open("a") as handle:
                        handle.write(json.dumps(row, default=str) + "\n")


if __name__ == "__main__":
    main()
