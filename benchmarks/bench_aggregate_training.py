"""Training on noisy annotators: labels as they are, majority vote, or Dawid–Skene soft targets (issue #15).

The demo's generated pairs (a learnable signal) are labeled by simulated annotators of known
accuracy, three per pair; the reward model (heads mode, offline MiniLM) is trained on the
store's labels with ``aggregate`` = none / majority / dawid-skene and scored on held-out pairs
with their true labels. Several seeds; prints one JSON line per run and a summary.

    python benchmarks/bench_aggregate_training.py --train 60 --test 200 --seeds 0,1,2,3,4
    python benchmarks/bench_aggregate_training.py --annotators careful=0.9,decent=0.75,spam1=0.5,spam2=0.5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from prefloop.loop.demo import generated_records
from prefloop.loop.reward import evaluate_model, train_model
from prefloop.model import ModelConfig
from prefloop.store.db import init_db, make_engine, session_scope
from prefloop.store.pairs import add_pairs
from prefloop.types import PairRecord

ANNOTATORS = {"careful": 0.9, "decent": 0.75, "random": 0.5, "contrary": 0.3}  # --annotators overrides


def labeled(records: list[PairRecord], rng: np.random.Generator, per_pair: int) -> list[PairRecord]:
    out = []
    names = list(ANNOTATORS)
    for r in records:
        for who in rng.choice(names, size=per_pair, replace=False):
            right = rng.random() < ANNOTATORS[str(who)]
            label = r.label if right else r.label.flipped()  # type: ignore[union-attr]
            out.append(PairRecord(r.prompt, r.response_a, r.response_b, label, annotator=str(who)))
    return out


def run(seed: int, n_train: int, n_test: int, per_pair: int, config: ModelConfig) -> list[dict[str, object]]:
    records = generated_records(n_train + n_test, seed=100 + seed)
    rng = np.random.default_rng(seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        init_db(url)
        engine = make_engine(url)
        with session_scope(engine) as session:
            add_pairs(session, labeled(records[:n_train], rng, per_pair), source="votes")
            add_pairs(session, records[n_train:], source="heldout", split="test")
        for aggregate in ("none", "majority", "dawid-skene"):
            t0 = time.perf_counter()
            result = train_model(engine, config, str(Path(tmp) / "artifacts"), progress=False, aggregate=aggregate)
            metrics = evaluate_model(engine, result.name, split="test", progress=False)
            rows.append(
                {
                    "seed": seed,
                    "aggregate": aggregate,
                    "accuracy": round(metrics["accuracy"], 4),
                    "log_loss": round(metrics["log_loss"], 4),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=120)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--per-pair", type=int, default=3)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--annotators",
        default=None,
        help="name=accuracy,... (default: %(default)s = " + ",".join(f"{k}={v}" for k, v in ANNOTATORS.items()) + ")",
    )
    args = parser.parse_args()
    if args.annotators:
        ANNOTATORS.clear()
        ANNOTATORS.update({k: float(v) for k, v in (item.split("=") for item in args.annotators.split(","))})
    config = ModelConfig(mode="heads", k=1, max_length=64)
    rows = [r for s in args.seeds.split(",") for r in run(int(s), args.train, args.test, args.per_pair, config)]
    summary = {}
    for aggregate in ("none", "majority", "dawid-skene"):
        acc = [float(r["accuracy"]) for r in rows if r["aggregate"] == aggregate]  # type: ignore[arg-type]
        loss = [float(r["log_loss"]) for r in rows if r["aggregate"] == aggregate]  # type: ignore[arg-type]
        summary[aggregate] = {
            "accuracy_mean": round(float(np.mean(acc)), 4),
            "accuracy_sd": round(float(np.std(acc)), 4),
            "log_loss_mean": round(float(np.mean(loss)), 4),
        }
    print(
        json.dumps(
            {
                "summary": summary,
                "annotators": ANNOTATORS,
                "train_pairs": args.train,
                "labels_per_pair": args.per_pair,
                "test_pairs": args.test,
            }
        )
    )


if __name__ == "__main__":
    main()
