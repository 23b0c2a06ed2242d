"""Issue #23: two combinations of the length methods, measured against plain ``project``.

    PREFLOOP_SHARED_DATA=../shared/data python benchmarks/bench_debias_combos.py backbone --json bb.jsonl
    PREFLOOP_SHARED_DATA=../shared/data python benchmarks/bench_debias_combos.py heads --json heads.jsonl
    python benchmarks/bench_length_robust.py --table-from heads.jsonl

- ``backbone`` (adapted mode): the backbone is fine-tuned on length-balanced label weights
  (``debias.balance_by_length``, what ``balanced`` does to the labels) before its K linear heads
  are trained with ``project``. The shipped adapted ``project`` fine-tunes the backbone on the
  plain labels. Rows are named ``project+balanced-backbone``; compare them with the adapted
  ``project`` rows of ``bench_length_robust.py`` (same seeds, same splits).
- ``heads`` (heads mode, frozen MiniLM, K = 5 MLP heads): ``project`` with and without
  length-balanced label weights on top (rows ``project`` and ``project+balanced``), both run here.
- ``adapted-heads`` (adapted mode): the backbone fine-tuned once on the plain labels (by
  ``none``, as ``bench_length_robust.py`` does), then heads-only retrains from it: ``project``,
  and ``project+balanced`` (the K linear heads trained on length-balanced label weights).

Settings and metrics as in ``bench_length_robust.py`` (``--settings``, ``--seeds``; helpful
training capped at ``--max-train`` pairs). One JSON line per run, appended to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_length_robust as bench
from length_splits import build_setting

import prefloop.model.adapted as adapted
import prefloop.model.ensemble as ensemble
from prefloop.model.debias import balance_by_length
from prefloop.model.evaluate import pair_lengths

_FINETUNE_FIT = adapted.FinetuneModel.fit.__func__  # type: ignore[attr-defined]
_REWEIGHTS = ensemble.reweights_labels
_STATE = {"balanced_backbone": False, "balanced_heads": False}


def _fit_on_balanced_labels(cls: Any, train: Any, val: Any, config: Any, *args: Any, **kwargs: Any) -> Any:
    if _STATE["balanced_backbone"]:
        train = train.subset(np.arange(len(train)))  # a copy: the heads still see the plain labels
        train.wins = balance_by_length(train.wins, *pair_lengths(train.pairs))
    return _FINETUNE_FIT(cls, train, val, config, *args, **kwargs)


def _reweights(config: Any) -> bool:
    return _REWEIGHTS(config) or (_STATE["balanced_heads"] and ensemble._debias(config) == "project")


adapted.FinetuneModel.fit = classmethod(_fit_on_balanced_labels)  # type: ignore[method-assign, assignment]
ensemble.reweights_labels = _reweights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["backbone", "heads", "adapted-heads"])
    ap.add_argument("--settings", nargs="+", choices=bench.SETTINGS, default=["harmless", "harmless-iid"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--max-train", type=int, default=1500, help="cap on helpful training pairs")
    ap.add_argument("--cache-dir", default=None, help="embedding cache (default: ~/.cache/prefloop/bench)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = args.cache_dir or str(Path.home() / ".cache" / "prefloop" / "bench")
    opts = argparse.Namespace(k=None, epochs=None, cache_dir=cache)
    runs = [("adapted", "project+balanced-backbone")] if args.which == "backbone" else []
    runs += [("heads", "project"), ("heads", "project+balanced")] if args.which == "heads" else []
    if args.which == "adapted-heads":
        runs += [("adapted", "none"), ("adapted", "project"), ("adapted", "project+balanced")]
    for seed in args.seeds:
        for setting in args.settings:
            train, test, info = build_setting(setting, seed, args.max_train if setting == "helpful" else 0)
            print(f"[seed {seed}] {setting}: {info}", flush=True)
            shared: dict[str, Any] = {}  # adapted-heads: the backbone 'none' trained, reused by the others
            for mode, name in runs:
                _STATE["balanced_backbone"] = name.endswith("balanced-backbone")
                _STATE["balanced_heads"] = name == "project+balanced"
                method = "none" if name == "none" else "project"
                row = bench._run_prefloop(mode, method, train, test, seed, opts, shared)
                row = {
                    "setting": setting,
                    "seed": seed,
                    "max_train": args.max_train if setting == "helpful" else 0,
                    "mode": mode,
                    "method": name,
                    "n_train": len(train),
                    "n_test": len(test),
                    **row,
                }
                print(json.dumps(row), flush=True)
                if args.json:
                    with args.json.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
