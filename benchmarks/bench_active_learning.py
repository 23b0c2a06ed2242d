"""Active learning on real human preferences (HH-RLHF harmless-base): strategies vs random.

    python benchmarks/bench_active_learning.py                       # the documented run
    python benchmarks/bench_active_learning.py --seeds 0 1 --rounds 4 # a quick look

Reads the shared HH pairs at run time (never copied into the repo): each line
``{"chosen", "rejected"}`` holds two whole dialogues; prompt = the shared text up to the last
"\\n\\nAssistant:", responses = the two final assistant turns, label = chosen.

Heads mode: MiniLM embeds every text once (cached on disk, so reruns are cheap), then the K
heads train in seconds per round. Writes curves/plot/summary to ``--out`` and prints the
summary table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prefloop.data.ingest import read_valid_records
from prefloop.loop.simulate import run_simulation
from prefloop.model import ModelConfig
from prefloop.types import PairRecord

DATA = Path(__file__).resolve().parents[2] / "shared/data/hh-rlhf-harmless-base-test.dev.jsonl.gz"


def load_hh(path: Path) -> list[PairRecord]:
    """The HH pairs through prefloop's own reader (prompt = the shared dialogue prefix)."""
    return read_valid_records(str(path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=Path("runs/active_learning"))
    ap.add_argument("--strategies", nargs="+", default=["random", "entropy", "disagreement", "bald", "diverse:bald"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--seed-size", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--test-fraction", type=float, default=0.25)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--head", default="mlp")
    ap.add_argument("--replay", type=float, default=100.0, help="replay_fraction (≥ 1 replays all old labels)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scratch", action="store_true", help="retrain from scratch each round (no warm start)")
    args = ap.parse_args()
    records = load_hh(args.data)
    print(f"{len(records)} HH pairs from {args.data}")
    cfg = ModelConfig(mode="heads", k=args.k, head=args.head, replay_fraction=args.replay, threads=args.threads)
    t0 = time.perf_counter()
    result = run_simulation(
        records,
        args.strategies,
        args.seeds,
        seed_size=args.seed_size,
        batch_size=args.batch_size,
        rounds=args.rounds,
        test_fraction=args.test_fraction,
        model_config=cfg,
        out_dir=args.out,
        progress=True,
        warm_start=not args.scratch,
    )
    print(f"done in {time.perf_counter() - t0:.0f}s; files: {', '.join(str(p) for p in result.paths.values())}")
    print(result.paths["summary"].read_text())


if __name__ == "__main__":
    main()
