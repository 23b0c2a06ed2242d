"""Issue #11 item 2: `prefloop train` on one half of HH harmless, scored on the other half.

    python benchmarks/bench_default_train.py                          # heads, adapted, finetune k=1
    python benchmarks/bench_default_train.py --modes adapted --retrain

The shared HH harmless file (1,170 pairs, read from ../shared/data at run time) is split in two
halves by a seeded permutation; each mode trains with its defaults (the CLI's `prefloop train
--mode M`, nothing else) on one half and is scored on the other: accuracy, log-loss, ECE, the
calibration temperature and the wall-clock training time on this machine. With ``--retrain``,
adapted mode is then retrained as a milestone would be (the other half's first 20 % as new labels,
below the adaptation threshold, so only the K heads retrain) and ``--pool N`` pairs are scored
from cached features, the cost of a sync cycle when no adaptation is due.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from prefloop.data.ingest import read_records
from prefloop.model import ModelConfig, PreferenceExample, RewardEnsemble, evaluate_prediction, evaluate_predictions
from prefloop.types import Choice

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless-base-test.dev.jsonl.gz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--modes", nargs="+", default=["heads", "adapted", "finetune-k1"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("runs/default_train"))
    args = ap.parse_args()
    records = [r for r in read_records(str(args.data)).records if r.label in (Choice.A, Choice.B)]
    perm = np.random.default_rng(args.seed).permutation(len(records))
    half = len(records) // 2
    train = [records[i] for i in perm[:half]]
    test = [records[i] for i in perm[half:]]
    examples = [PreferenceExample(r.prompt, r.response_a, r.response_b, r.label) for r in train]
    texts = [(r.prompt, r.response_a, r.response_b) for r in test]
    labels = [r.label.value for r in test]
    print(f"train {len(train)} pairs, test {len(test)} pairs", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in args.modes:
        mode, _, k = spec.partition("-k")
        cfg = ModelConfig(mode=mode, **({"k": int(k)} if k else {}))
        t0 = time.perf_counter()
        ens, _report = RewardEnsemble.train(examples, cfg, progress=False)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = ens.predict(texts)
        score_s = time.perf_counter() - t0
        m, _, _ = evaluate_prediction(pred, texts, labels)
        row = {
            "mode": spec,
            "k": cfg.k,
            "train_s": round(train_s, 1),
            "score_s": round(score_s, 1),
            "accuracy": round(m["accuracy"], 4),
            "log_loss": round(m["log_loss"], 4),
            "ece": round(m["ece"], 4),
            "temperature": round(ens.temperature, 3),
            "length_corr": m.get("length_corr"),
        }
        print(json.dumps(row), flush=True)
        if args.retrain and mode == "adapted":
            _retrain(ens, cfg, examples, test, texts, labels)


def _retrain(
    ens: RewardEnsemble, cfg: ModelConfig, old: list[PreferenceExample], test: list, texts: list, labels: list
) -> None:
    new = [PreferenceExample(r.prompt, r.response_a, r.response_b, r.label) for r in test[: len(test) // 5]]
    t0 = time.perf_counter()
    child, report = RewardEnsemble.train(new, cfg, parent=ens, replay=old, progress=False)
    retrain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = child.predict(texts)  # the test pairs' features are cached: this is a pool scoring's cost
    score_s = time.perf_counter() - t0
    m = evaluate_predictions(pred.p_a, labels, p_tie=pred.p_tie, p_b=pred.p_b)
    print(
        json.dumps(
            {
                "mode": "adapted retrain (heads only)",
                "adapted": report["adapted"],
                "retrain_s": round(retrain_s, 1),
                "score_cached_s": round(score_s, 2),
                "pairs_scored": len(texts),
                "accuracy_incl_seen": round(m["accuracy"], 4),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
