"""Issue #23: how much could a length offset lift the worst group? An oracle check, not a method.

    PREFLOOP_SHARED_DATA=../shared/data python benchmarks/bench_length_offset_oracle.py --setting harmless --seeds 0 1 2

Trains ``--method`` (default ``project_balanced``, heads mode) on the setting's training pairs
(``bench_length_robust.py``'s splits), then adds β·(log(1 + chars a) − log(1 + chars b)) to every
test gap for 401 values of β (± the gaps' spread per unit of log-length gap) and reports the β
*chosen on the test itself* that maximises the worst length group. It looks at the test, so it
is an upper bound on what any length offset fitted without the test can give, not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from length_splits import SETTINGS, build_setting

from prefloop.model import ModelConfig, PreferenceExample, RewardEnsemble
from prefloop.model.length_groups import group_metrics


def _worst(gap: np.ndarray, y: np.ndarray, len_a: np.ndarray, len_b: np.ndarray) -> tuple[float, float]:
    """(worst length group's accuracy, overall accuracy) of the gaps ``gap`` against labels ``y``."""
    g = group_metrics(1 / (1 + np.exp(-gap)), y, len_a, len_b, n_boot=10, seed=0)
    return float(g["worst_group_accuracy"]), float(((gap > 0) == (y > 0.5)).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setting", choices=SETTINGS, default="harmless")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--mode", default="heads")
    ap.add_argument("--method", default="project_balanced")
    ap.add_argument("--max-train", type=int, default=1500)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for seed in args.seeds:
        train, test, _info = build_setting(args.setting, seed, args.max_train if args.setting == "helpful" else 0)
        cfg = ModelConfig(mode=args.mode, seed=seed, debias="length", debias_method=args.method)
        examples = [PreferenceExample(r.prompt, r.response_a, r.response_b, r.label) for r in train]
        ens, _ = RewardEnsemble.train(examples, cfg, progress=False)
        pred = ens.predict([(r.prompt, r.response_a, r.response_b) for r in test])
        gap = np.asarray(pred.reward_a - pred.reward_b, dtype=float)
        gap = gap.mean(axis=1) if gap.ndim == 2 else gap
        y = np.array([1.0 if r.label.value == "a" else 0.0 for r in test])
        len_a = np.array([len(r.response_a) for r in test], dtype=float)
        len_b = np.array([len(r.response_b) for r in test], dtype=float)
        x = np.log1p(len_a) - np.log1p(len_b)

        unit = float(np.std(gap) / max(np.std(x), 1e-12))
        sweep = [(_worst(gap + b * unit * x, y, len_a, len_b), b) for b in np.linspace(-1, 1, 401)]
        (best_worst, best_acc), beta = max(sweep, key=lambda t: t[0][0])
        base_worst, base_acc = _worst(gap, y, len_a, len_b)
        row = {"setting": args.setting, "seed": seed, "method": args.method, "accuracy": base_acc}
        row |= {"worst_group": base_worst, "oracle_worst_group": best_worst, "oracle_accuracy": best_acc}
        print(json.dumps(row | {"oracle_beta_in_gap_sd_per_log_len_sd": float(beta)}), flush=True)


if __name__ == "__main__":
    main()
