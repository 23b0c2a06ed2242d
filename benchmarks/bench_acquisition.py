"""Time and peak memory of every acquisition strategy on a large synthetic pool.

    python benchmarks/bench_acquisition.py                 # 1,000 of 1,000,000 (default)
    python benchmarks/bench_acquisition.py --n 100000 --k 500

The pool: K=5 members' P(a≻b), a tie probability, one prompt id per pair (~4 pairs a
prompt) and 384-d float32 pair embeddings (MiniLM size) in a ``np.memmap`` on disk, the way
a large cached embedding matrix would be held; diversity reads only its shortlist's rows.
Peak memory is what ``tracemalloc`` sees numpy allocate during ``select`` (inputs excluded).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from prefloop.acquisition import ProbPool, get_strategy

SPECS = [
    ("random", {}),
    ("entropy", {}),
    ("disagreement", {}),
    ("logit_disagreement", {}),
    ("bald", {}),
    ("margin", {}),
    ("bald", {"max_per_prompt": 2}),
    ("diverse:bald", {}),
    ("diverse:bald", {"method": "kmeanspp"}),
    ("diverse:bald", {"max_per_prompt": 2}),
]


def make_pool(n: int, k_members: int, dim: int, folder: Path, seed: int = 0) -> ProbPool:
    rng = np.random.default_rng(seed)
    centre = rng.random((n, 1))
    p = np.clip(centre + 0.1 * rng.standard_normal((n, k_members)), 0.0, 1.0)
    p_tie = 0.2 * rng.random(n)
    prompt_ids = rng.integers(0, n // 4, size=n)
    emb = np.lib.format.open_memmap(folder / "emb.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    step = 100_000
    for start in range(0, n, step):
        stop = min(n, start + step)
        emb[start:stop] = rng.standard_normal((stop - start, dim), dtype=np.float32)
    emb.flush()
    exclude = rng.choice(n, size=n // 100, replace=False)  # 1% already labelled or pending
    return ProbPool(p_members=p, p_tie=p_tie, embeddings=emb, prompt_ids=prompt_ids, exclude=exclude)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=1_000)
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--dim", type=int, default=384)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        pool = make_pool(args.n, args.members, args.dim, Path(tmp))
        print(
            f"pool: n={args.n:,} K={args.members} dim={args.dim} built in {time.perf_counter() - t0:.1f}s; "
            f"p_members {pool.p_members.nbytes / 2**20:.0f} MiB"
        )
        print("| strategy | params | k | time (s) | peak MiB | selected |")
        print("|---|---|---|---|---|---|")
        for spec, params in SPECS:
            strategy = get_strategy(spec, **params)
            tracemalloc.start()
            t0 = time.perf_counter()
            sel = strategy.select(pool, args.k, np.random.default_rng(0))
            dt = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert len(set(sel.indices.tolist())) == len(sel) == args.k
            print(f"| {strategy.name} | {params or ''} | {args.k:,} | {dt:.2f} | {peak / 2**20:.0f} | {len(sel):,} |")


if __name__ == "__main__":
    main()
