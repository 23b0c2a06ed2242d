"""Benchmarks 2-4 in heads mode on the shared HH pairs (80/20 split, seed 0), MiniLM, max_length 256.

(2) scoring a pool with K=5 heads vs K=1 (cold: pool texts not yet embedded; warm: cached);
(3) incremental retrain after +10 % labels (warm start + replay) vs full retrain;
(4) held-out accuracy, log-loss, ECE (+ length metrics) and the two PNGs.
Prints one JSON line per measurement.

    python benchmarks/bench_model_heads.py --out /tmp/bench
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[1].parent / "shared/data/hh-rlhf-harmless-base-test.dev.jsonl.gz"


def emit(**row: object) -> None:
    row["loadavg"] = os.getloadavg()
    print(json.dumps(row, default=float), flush=True)


def main() -> None:
    from bench_model_finetune_vs_trl import load_split

    from prefloop.model import (
        ModelConfig,
        RewardEnsemble,
        evaluate_predictions,
        plot_reliability,
        plot_reward_vs_length,
    )

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--out", default="/tmp/bench")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = load_split(Path(args.data), None, None)
    test_pairs = [(e.prompt, e.response_a, e.response_b) for e in test]
    labels = [e.choice for e in test]
    la = np.array([len(e.response_a) for e in test])
    lb = np.array([len(e.response_b) for e in test])
    emit(setup={"n_train": len(train), "n_test": len(test), "threads": torch.get_num_threads()})

    def metrics(ens: RewardEnsemble) -> dict:
        p = ens.predict(test_pairs)
        return evaluate_predictions(
            p.p_a, labels, p_tie=p.p_tie, reward_a=p.reward_a, reward_b=p.reward_b, len_a=la, len_b=lb
        )

    # (2) scoring cost K=5 vs K=1: each with its own fresh cache, so the pool is cold for both
    for k in (1, 5):
        cfg = ModelConfig(mode="heads", k=k, max_length=args.max_length, cache_dir=tempfile.mkdtemp())
        ens, rep = RewardEnsemble.train(train, cfg, progress=False)
        t = time.perf_counter()
        ens.predict(test_pairs)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        ens.predict(test_pairs)
        warm = time.perf_counter() - t
        emit(
            bench="2-score-pool",
            k=k,
            pool_pairs=len(test_pairs),
            cold_seconds=cold,
            warm_seconds=warm,
            train_seconds_incl_embedding=rep["seconds"],
            head_seconds=rep["head_seconds"],
        )
        if k == 5:
            ens5, cfg5 = ens, cfg

    # (4) held-out metrics of the K=5 heads ensemble + plots
    m = metrics(ens5)
    emit(bench="4-heldout-heads", k=5, **m)
    p = ens5.predict(test_pairs)
    plot_reliability(p.p_a, labels, out / "reliability_heads.png", p_tie=p.p_tie)
    plot_reward_vs_length(
        np.concatenate([p.reward_a, p.reward_b]), np.concatenate([la, lb]), out / "reward_vs_length_heads.png"
    )

    # (3) incremental (+10 % labels) vs full retrain; all texts already embedded for both
    n_old = round(len(train) / 1.1)
    old, new = train[:n_old], train[n_old:]
    parent, _ = RewardEnsemble.train(old, cfg5, progress=False)
    t = time.perf_counter()
    child, rep_c = RewardEnsemble.train(new, cfg5, parent=parent, replay=old, progress=False)
    inc_s = time.perf_counter() - t
    t = time.perf_counter()
    full, _rep_f = RewardEnsemble.train(train, cfg5, progress=False)
    full_s = time.perf_counter() - t
    emit(
        bench="3-incremental-heads",
        n_old=len(old),
        n_new=len(new),
        replayed=rep_c["n_replayed"],
        incremental_seconds=inc_s,
        full_seconds=full_s,
        time_ratio=inc_s / full_s,
        acc_parent=metrics(parent)["accuracy"],
        acc_incremental=metrics(child)["accuracy"],
        acc_full=metrics(full)["accuracy"],
    )
    # same comparison with a longer replay (replay_fraction 2: twice as many old labels as new)
    cfg_r = dataclasses.replace(cfg5, replay_fraction=2.0)
    t = time.perf_counter()
    child2, _ = RewardEnsemble.train(new, cfg_r, parent=parent, replay=old, progress=False)
    emit(
        bench="3-incremental-heads-replay2",
        incremental_seconds=time.perf_counter() - t,
        acc_incremental=metrics(child2)["accuracy"],
    )


if __name__ == "__main__":
    main()
