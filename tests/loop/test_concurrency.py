"""Two `prefloop sync` at once on one store (SQLite file lock / PostgreSQL advisory lock)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from prefloop.store.db import make_engine, session_scope
from prefloop.store.models import Label, Task
from tests.demo_oracle import oracle_path
from tests.loop.world import World, make_world

pytestmark = pytest.mark.slow  # four full sync processes per database (~25 s loaded)


def _wait_for(path: Path, proc: subprocess.Popen[str], what: str) -> None:
    """Until ``path`` exists (a checkpoint's marker): the processes say when, no clock orders them."""
    deadline = time.monotonic() + 300  # only a bound for a hung run, never what orders the events
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{what} never happened: {proc.communicate()}"


def _run_two(world: World, second_waits: bool) -> list[subprocess.CompletedProcess[str]]:
    """A sync paused inside its cycle (holding the lock) until the test releases it, and a second one.

    ``second_waits``: the second is started with a lock timeout; the first is released only once
    the second has found the lock held and begun to wait. Otherwise the second (timeout 0) gives up
    while the first still holds the lock, and then the first is released.
    """
    paused, release, waiting = (world.tmp / n for n in ("first-paused", "first-release", "second-waiting"))
    for path in (paused, release, waiting):
        path.unlink(missing_ok=True)
    pause = {
        "PREFLOOP_PAUSE_AT": "pull:fetched",
        "PREFLOOP_PAUSE_FILE": str(paused),
        "PREFLOOP_PAUSE_UNTIL": str(release),
    }
    first = subprocess.Popen(
        world._cmd(),
        cwd=world.tmp,
        env={**os.environ, **world.env, **pause},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(paused, first, "the first sync's pause")
    mark = {"PREFLOOP_PAUSE_AT": "lock:waiting", "PREFLOOP_PAUSE_FILE": str(waiting), "PREFLOOP_PAUSE_SECONDS": "0"}
    second = subprocess.Popen(
        world._cmd(),
        cwd=world.tmp,
        env={**os.environ, **world.env, **mark},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    done: dict[int, tuple[str, str]] = {}
    if second_waits:
        _wait_for(waiting, second, "the second sync waiting for the lock")
    else:
        done[1] = second.communicate(timeout=600)  # it gave up while the first held the lock
    release.touch()
    done[0] = first.communicate(timeout=600)
    if 1 not in done:
        done[1] = second.communicate(timeout=600)
    return [subprocess.CompletedProcess(p.args, p.returncode, *done[i]) for i, p in enumerate((first, second))]


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
    first, second = _run_two(world, second_waits=False)
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
    first, second = _run_two(waiting, second_waits=True)  # the second waits for the first, then runs its own
    assert (first.returncode, second.returncode) == (0, 0), first.stdout + second.stdout + second.stderr
    tasks, labels = _consistent(db_url)
    # both cycles ran, one after the other: each pulled the previous batch and pushed a new one
    assert (tasks, labels) == (24, 16)
