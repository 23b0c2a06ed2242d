"""Storing pulled labels: a first pull of N annotations, a re-pull of the same, and an edit round.

Measures ``record_pull`` alone (no HTTP): N pairs, two annotators each (2N labels), every
pair reported alive. Rounds: first pull (all new), the same pull again (all duplicates),
then 5 % of the labels edited plus 1 % deleted. Prints one JSON line per round.

    python benchmarks/bench_record_pull.py --pairs 10000
    python benchmarks/bench_record_pull.py --pairs 10000 --db postgresql://postgres@127.0.0.1:5432/prefloop_bench
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from prefloop.store.db import init_db, make_engine, session_scope
from prefloop.store.labels import record_pull
from prefloop.store.pairs import add_pairs
from prefloop.types import AnnotatorRef, Choice, PairRecord, PulledLabel, PullResult


def labels_for(keys: list[str], version: str, choice: Choice) -> list[PulledLabel]:
    return [
        PulledLabel(key, AnnotatorRef(f"u{j}"), choice, source_id=f"ann-{i}-{j}", version=version)
        for i, key in enumerate(keys)
        for j in (1, 2)
    ]


def alive(keys: list[str], gone: set[str] | None = None) -> dict[str, frozenset[str]]:
    gone = gone or set()
    return {k: frozenset(s for s in (f"ann-{i}-1", f"ann-{i}-2") if s not in gone) for i, k in enumerate(keys)}


def timed(engine: object, name: str, result: PullResult) -> None:
    t0 = time.perf_counter()
    with session_scope(engine) as session:
        counts = record_pull(session, "ls", "bench", result)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "round": name,
                "labels_in": len(result.labels),
                "seconds": round(seconds, 2),
                "labels_per_s": round(len(result.labels) / seconds) if result.labels else None,
                "new": counts.new,
                "edited": counts.edited,
                "duplicates": counts.duplicates,
                "deleted": counts.deleted,
            }
        ),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=10000)
    ap.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    url = args.db or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    init_db(url)
    engine = make_engine(url)
    records = [PairRecord(f"prompt {i}", f"answer a {i}", f"answer b {i}") for i in range(args.pairs)]
    with session_scope(engine) as session:
        add_pairs(session, records, source="bench")
    keys = [r.canonical().key for r in records]
    first = labels_for(keys, "v1", Choice.A)
    timed(engine, "first pull", PullResult(first, "c1", alive(keys)))
    timed(engine, "same pull again", PullResult(first, "c1", alive(keys)))
    n_edit = len(first) // 20
    edits = labels_for(keys, "v2", Choice.B)[:n_edit]
    gone = {lb.source_id for lb in first[n_edit : n_edit + len(first) // 100]}
    timed(engine, "5% edited, 1% deleted", PullResult(edits, "c2", alive(keys, gone)))


if __name__ == "__main__":
    main()
