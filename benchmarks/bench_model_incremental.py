"""Benchmark 3 (finetune mode): incremental retrain after +10 % labels vs full retrain.

Parent: finetune on the first ~91 % of the train split; child: warm start from the parent on
the new ~9 % (= +10 % labels) plus ``replay_fraction`` × new replayed old labels; full: from
scratch on everything. Prints time and held-out accuracy of each as JSON lines.

    python benchmarks/bench_model_incremental.py --n-train 400 --max-length 128 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from bench_model_finetune_vs_trl import DATA, load_split

    from prefloop.model import ModelConfig, RewardEnsemble, evaluate_predictions

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--replay-fraction", type=float, default=0.5)
    args = ap.parse_args()
    train, test = load_split(Path(args.data), args.n_train, None)
    pairs = [(e.prompt, e.response_a, e.response_b) for e in test]
    cfg = ModelConfig(
        mode="finetune",
        k=1,
        max_length=args.max_length,
        epochs=args.epochs,
        lr=1e-4,
        weight_decay=0.0,
        val_fraction=0.0,
        replay_fraction=args.replay_fraction,
    )

    def acc(ens: RewardEnsemble) -> float:
        p = ens.predict(pairs)
        return evaluate_predictions(p.p_a, [e.choice for e in test], p_tie=p.p_tie, p_b=p.p_b)["accuracy"]

    n_old = round(len(train) / 1.1)
    old, new = train[:n_old], train[n_old:]
    rows = {}
    for name, kwargs in (
        ("parent", {"examples": old}),
        ("incremental", {"examples": new, "replay": old}),
        ("full", {"examples": train}),
    ):
        extra = {"parent": rows["parent"]["model"]} if name == "incremental" else {}
        t = time.perf_counter()
        ens, rep = RewardEnsemble.train(config=cfg, progress=False, **kwargs, **extra)
        secs = time.perf_counter() - t
        rows[name] = {"model": ens, "seconds": secs, "fit_seconds": rep["fit_seconds"], "n": rep["n_examples"]}
        print(
            json.dumps(
                {
                    "run": name,
                    "seconds": secs,
                    "fit_seconds": rep["fit_seconds"],
                    "n_examples": rep["n_examples"],
                    "accuracy": acc(ens),
                    "loadavg": os.getloadavg(),
                }
            ),
            flush=True,
        )
    print(
        json.dumps(
            {
                "time_ratio_fit": rows["incremental"]["fit_seconds"] / rows["full"]["fit_seconds"],
                "n_test": len(test),
                "max_length": args.max_length,
                "epochs": args.epochs,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
