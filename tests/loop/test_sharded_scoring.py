"""Scoring the pool in several processes started by accelerate gives what one process gives (#29).

Two processes on this CPU (gloo): ``accelerate launch --multi_gpu --num_processes 2 -m prefloop
--db URL score`` (accelerate starts several local processes only through that launcher; on a
machine without GPUs prefloop asks it for the CPU backend). Each process scores its share of
every chunk, the main one writes them all; the stored predictions must equal a single process's
to 1e-6, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select

from prefloop.model import processes
from prefloop.store.db import make_engine, session_scope
from prefloop.store.models import Prediction
from tests.clirun import run


def test_shares_cover_the_list_once_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    for n in (0, 1, 5, 10, 11):
        for size in (1, 2, 3):
            parts = []
            for r in range(size):
                monkeypatch.setattr(processes, "world_size", lambda size=size: size)
                monkeypatch.setattr(processes, "rank", lambda r=r: r)
                parts.append(processes.share(n))
            covered = [i for s in parts for i in range(n)[s]]
            assert covered == list(range(n))
            assert max(len(range(n)[s]) for s in parts) - min(len(range(n)[s]) for s in parts) <= 1


def test_one_process_needs_no_launcher() -> None:
    assert processes.world_size() == 1 and processes.is_main()
    assert processes.gather({"x": 1}) == [{"x": 1}] and processes.from_main(3) == 3


def _predictions(url: str) -> dict[tuple[int, str], tuple[float, ...]]:
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            rows = session.execute(select(Prediction)).scalars().all()
            return {(r.pair_id, r.dimension): (r.p_a, r.p_tie, r.spread, *r.members) for r in rows}
    finally:
        engine.dispose()


def _clear(url: str) -> None:
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            session.execute(delete(Prediction))
    finally:
        engine.dispose()


@pytest.mark.slow  # trains a heads model, then three real scoring processes (~1-2 min on 2 loaded cores)
def test_two_processes_store_what_one_process_stores(tmp_path: Path, db_url: str) -> None:
    if shutil.which("accelerate") is None:
        pytest.fail("accelerate's launcher is a dependency of prefloop and must be on PATH")
    from prefloop.loop.demo import generated_records

    rows = [
        {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b, "label": r.label.value}
        for r in generated_records(110, seed=5)
    ]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:40]))
    (tmp_path / "pool.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "label"}) + "\n" for r in rows[40:])
    )
    (tmp_path / "prefloop.toml").write_text(
        f'db = "{db_url}"\n[model]\nmode = "heads"\nk = 2\nmax_length = 64\ncache_dir = "{tmp_path / "cache"}"\n'
    )
    run(tmp_path, "ingest", "train.jsonl")
    run(tmp_path, "ingest", "pool.jsonl")
    model = run(tmp_path, "train").stdout.strip()
    assert run(tmp_path, "score").stdout.strip() == f"{model}: 70 pairs scored"
    single = _predictions(db_url)
    _clear(db_url)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "CUDA_VISIBLE_DEVICES": ""}
    launcher = [
        shutil.which("accelerate") or "accelerate",
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "prefloop",
        "score",
    ]
    proc = subprocess.run(launcher, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("pairs scored") == 1, "only the main process reports"
    assert f"{model}: 70 pairs scored" in proc.stdout
    sharded = _predictions(db_url)
    assert sharded.keys() == single.keys() and len(single) == 70
    diff = max(float(np.max(np.abs(np.subtract(sharded[k], single[k])))) for k in single)
    assert diff <= 1e-6, diff
