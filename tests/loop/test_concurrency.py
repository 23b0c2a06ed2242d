"""Two `prefloop sync` at once on one store (SQLite file lock / PostgreSQL advisory lock)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from sqlalchemy import func, select

from prefloop.store.db import make_engine, session_scope
from prefloop.store.models import Label, Task
from tests.demo_oracle import oracle_path
from tests.loop.world import World, make_world


def _run_two(world: World) -> list[subprocess.CompletedProcess[str]]:
    """Start a sync that pauses 5 s inside its cycle (holding the lock), then a second one."""
    marker = world.tmp / "first-paused"
    marker.unlink(missing_ok=True)
    pause = {"PREFLOOP_PAUSE_AT": "pull:fetched", "PREFLOOP_PAUSE_FILE": str(marker), "PREFLOOP_PAUSE_SECONDS": "5"}
    first = subprocess.Popen(
        world._cmd(),
        cwd=world.tmp,
        env={**os.environ, **world.env, **pause},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not marker.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the first sync never reached its pause"
    second = subprocess.Popen(
        world._cmd(),
        cwd=world.tmp,
        env={**os.environ, **world.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = []
    for proc in (first, second):
        stdout, stderr = proc.communicate(timeout=600)
        out.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return out


def _consistent(db_url: str) -> tuple[int, int]:
    engine = make_engine(db_url)
    with session_scope(engine) as session:
        tasks = session.scalar(select(func.count(Task.id))) or 0
        distinct_pairs = session.scalar(select(func.count(func.distinct(Task.pair_id)))) or 0
        labels = session.scalar(select(func.count(Label.id))) or 0
        sources = session.scalar(select(func.count(func.distinct(Label.source_id)))) or 0
        unconfirmed = session.scalar(select(func.count(Task.id)).where(Task.external_id == "")) or 0
    engine.dispose()
    assert tasks == distinct_pairs and labels == sources and unconfirmed == 0
    return tasks, labels


def test_concurrent_syncs_keep_the_store_consistent(db_url: str, tmp_path: Path) -> None:
    world = make_world(
        tmp_path,
        db_url,
        {
            "name": "simulated",
            "project": "conc",
            "url": str(tmp_path / "sim"),
            "extra": {"oracle_path": str(oracle_path(tmp_path, 40))},
        },
        lock_timeout_s=0,
    )
    first, second = _run_two(world)
    assert (first.returncode, second.returncode) == (0, 4), first.stdout + first.stderr + second.stdout
    assert "lock_held" in second.stdout
    assert _consistent(db_url) == (8, 0)

    (tmp_path / "w").mkdir()
    waiting = make_world(
        tmp_path / "w",
        db_url,
        {
            "name": "simulated",
            "project": "conc",
            "url": str(tmp_path / "sim"),
            "extra": {"oracle_path": str(tmp_path / "oracle.jsonl")},
        },
        n_pairs=0,
        lock_timeout_s=300,
    )
    first, second = _run_two(waiting)  # the second waits for the first, then runs its own cycle
    assert (first.returncode, second.returncode) == (0, 0), first.stdout + second.stdout + second.stderr
    tasks, labels = _consistent(db_url)
    # both cycles ran, one after the other: each pulled the previous batch and pushed a new one
    assert (tasks, labels) == (24, 16)
