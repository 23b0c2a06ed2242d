"""Issue #23: which length directions 'project' removes, heads mode (fast), 3 seeds.

    PREFLOOP_SHARED_DATA=../shared/data python benchmarks/bench_projection_variants.py

Variants of ``debias_heads.length_directions``: ``all3`` (the shipped one: chars, log chars and
the within-pair log-length gap, each with the preference held fixed), ``pair_only`` (only the
within-pair direction), ``no_label`` (all three, preference not held fixed), and ``none`` (a
plain head). Settings and metrics as in bench_length_robust.py; prints one JSON line per run.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_length_robust as bench
from length_splits import build_setting

import prefloop.model.debias_heads as dh

SHIPPED = dh.length_directions


def pair_only(
    za: torch.Tensor, zb: torch.Tensor, la: torch.Tensor, lb: torch.Tensor, a_wins: Any = None, tol: float = 0.05
) -> torch.Tensor:
    out = torch.zeros(za.shape[1], dh.LENGTH_DIRECTIONS, dtype=za.dtype)
    won = torch.full((len(za),), 0.5, dtype=torch.float64) if a_wins is None else a_wins.double()
    c = dh._coefficient((torch.log1p(la) - torch.log1p(lb)).double(), 2 * won - 1, (za - zb).double())
    out[:, 0] = (c / c.norm()).to(za.dtype)
    return out


def no_label(
    za: torch.Tensor, zb: torch.Tensor, la: torch.Tensor, lb: torch.Tensor, a_wins: Any = None, tol: float = 0.05
) -> torch.Tensor:
    return SHIPPED(za, zb, la, lb, None, tol)


VARIANTS = {"all3": SHIPPED, "pair_only": pair_only, "no_label": no_label}


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        args = type("Args", (), {"k": None, "epochs": None, "cache_dir": cache})()
        for seed in (0, 1, 2):
            for setting in ("harmless", "harmless-iid"):
                train, test, _info = build_setting(setting, seed)
                for name, fn in [*VARIANTS.items(), ("none", SHIPPED)]:
                    dh.length_directions = fn  # type: ignore[assignment]
                    method = "none" if name == "none" else "project"
                    row = bench._run_prefloop("heads", method, train, test, seed, args, {})
                    keep = ("accuracy", "worst_group_accuracy", "r_len", "log_loss")
                    print(json.dumps({"variant": name, "setting": setting, "seed": seed, **{k: row[k] for k in keep}}))


if __name__ == "__main__":
    main()
