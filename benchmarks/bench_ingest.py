"""Ingest N generated pairs into a fresh store (SQLite, or PostgreSQL with --pg); print time and memory.

Runs each size in a child process so peak RSS is that ingest's alone. Memory should
not grow with the file (one streaming pass, batched writes). ``cpu_seconds`` is the
child's user + system time: on a shared machine wall time also counts other work.

    python benchmarks/bench_ingest.py --sizes 25000 100000
    python benchmarks/bench_ingest.py --sizes 100000 --pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "reward",
    "models",
    "learn",
    "human",
    "preference",
    "from",
    "pairs",
    "of",
    "answers",
    "that",
    "differ",
    "in",
    "tone",
    "length",
    "and",
    "helpfulness",
]


def generate(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as handle:
        for i in range(n):
            prompt = f"Question {i // 4}: " + " ".join(rng.choices(WORDS, k=30))
            a = " ".join(rng.choices(WORDS, k=rng.randint(20, 120)))
            b = " ".join(rng.choices(WORDS, k=rng.randint(20, 120)))
            handle.write(
                json.dumps({"prompt": prompt, "response_a": a, "response_b": b, "label": rng.choice("ab")}) + "\n"
            )


def child(path: str, db: str) -> None:
    from prefloop.data.ingest import ingest
    from prefloop.store.db import init_db, make_engine

    init_db(db)
    engine = make_engine(db)
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    report = ingest(engine, path, progress=False)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    print(
        json.dumps(
            {
                "pairs_added": report.pairs_added,
                "labels_added": report.labels_added,
                "seconds": round(seconds, 1),
                "pairs_per_s": round(report.pairs_added / seconds),
                "cpu_seconds": round(cpu, 1),
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            }
        )
    )


def fresh_pg_database(admin_url: str, name: str) -> str:
    """A new empty database next to ``admin_url``'s (dropped first if it exists)."""
    from sqlalchemy import create_engine, text

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 100_000])
    parser.add_argument("--child", nargs=2, metavar=("PATH", "DB"))
    parser.add_argument(
        "--pg",
        default=None,
        metavar="ADMIN_URL",
        help="Measure PostgreSQL: a fresh database is created next to this one per size.",
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"pairs_{n}.jsonl"
            generate(path, n)
            db = fresh_pg_database(args.pg, f"prefloop_bench_{n}") if args.pg else f"sqlite:///{tmp}/store_{n}.db"
            out = (
                subprocess.run(
                    [sys.executable, __file__, "--child", str(path), db], capture_output=True, text=True, check=True
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            size_mb = path.stat().st_size / 1e6
            print(f"n={n:>7} file={size_mb:6.1f} MB -> {out}")


if __name__ == "__main__":
    main()
