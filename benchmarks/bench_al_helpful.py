"""Active learning on the HH-RLHF helpful files: can choosing pairs beat random with a test set that sees it?

    python benchmarks/bench_al_helpful.py                     # the documented run (5 seeds, 1,000 labels)
    python benchmarks/bench_al_helpful.py --seeds 0 1 --rounds 3 --strategies random bald

The same experiment as
``prefloop simulate hh-rlhf-helpful-rejection-sampled-test.jsonl.gz --test hh-rlhf-helpful-base-test.jsonl.gz``:
the pool is the helpful-rejection-sampled test split (2,717 usable pairs), the independent test
set the helpful-base test split (2,352 usable pairs; degenerate rows skipped and counted), both
read from ``../shared/data`` at run time. Every seed starts from 100 random labels and adds 100
per round up to 1,000; the simulated annotators answer with the human label. The default heads
model (frozen MiniLM features, K = 5 linear heads, out-of-bag early stopping, temperature)
retrains each round. Prints the summary: labels to reach random's final accuracy (CI over
seeds), and AULC / final accuracy against random paired by seed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prefloop.data.ingest import read_records
from prefloop.loop.simulate import run_simulation
from prefloop.model import ModelConfig

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=Path, default=SHARED / "hh-rlhf-helpful-rejection-sampled-test.jsonl.gz")
    ap.add_argument("--test", type=Path, default=SHARED / "hh-rlhf-helpful-base-test.jsonl.gz")
    ap.add_argument("--out", type=Path, default=Path("runs/al_helpful"))
    ap.add_argument(
        "--strategies", nargs="+", default=["random", "bald", "diverse:bald", "epig", "noise_aware", "balpm"]
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--seed-size", type=int, default=100)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--noise", type=float, default=0.0)
    ap.add_argument(
        "--head",
        choices=["linear", "mlp"],
        default="linear",
        help="head of the heads model (linear: what the demo uses, and 10x faster to train)",
    )
    args = ap.parse_args()
    pool, test = read_records(str(args.pool)), read_records(str(args.test))
    print(
        f"pool {args.pool.name}: {len(pool.records)} pairs ({pool.degenerate} degenerate rows skipped); "
        f"test {args.test.name}: {len(test.records)} pairs ({test.degenerate} degenerate rows skipped)",
        flush=True,
    )
    t0 = time.perf_counter()
    model = ModelConfig(mode="heads", head=args.head)
    result = run_simulation(
        pool.records,
        args.strategies,
        args.seeds,
        seed_size=args.seed_size,
        batch_size=args.batch,
        rounds=args.rounds,
        model_config=model,
        out_dir=args.out,
        noise_rate=args.noise,
        test_pairs=test.records,
        progress=False,
    )
    print(result.paths["summary"].read_text())
    print(f"{time.perf_counter() - t0:.0f} s; files: " + ", ".join(str(p) for p in result.paths.values()))


if __name__ == "__main__":
    main()
