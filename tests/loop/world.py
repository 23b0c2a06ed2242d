"""A small world for loop tests: a store, a prefloop.toml and a real (or simulated) backend.

Each world runs ``prefloop sync`` as a real subprocess, the way cron does, so a test can
kill -9 it at a checkpoint (``prefloop.faults``) and check what survives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from prefloop.backends import AnnotationBackend
from prefloop.config import load_config
from prefloop.loop.demo import generated_records
from prefloop.loop.sync import backend_settings
from prefloop.store.db import init_db, make_engine, session_scope
from prefloop.store.models import Label, Task
from prefloop.store.pairs import add_pairs
from prefloop.types import PairRecord, PushedTask

__all__ = ["World", "make_world"]

FAST_MODEL = {"mode": "heads", "k": 2, "max_length": 48, "head_epochs": 20, "head_patience": 5}


@dataclass
class World:
    tmp: Path
    db_url: str
    config_path: Path
    backend: AnnotationBackend
    # annotate(task) labels one task at the backend as a person would; None for the simulator
    annotate: Callable[[PushedTask], None] | None = None
    annotated: set[str] = field(default_factory=set)
    env: dict[str, str] = field(default_factory=dict)

    def sync(
        self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._cmd(*args),
            cwd=self.tmp,
            env={**os.environ, **self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _cmd(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "prefloop.cli",
            "--db",
            self.db_url,
            "sync",
            "--config",
            str(self.config_path),
            *args,
        ]

    def sync_killed_at(self, point: str, timeout: float = 300) -> bool:
        """Start a sync, wait until it reaches ``point``, then kill -9 it. True if it got there."""
        marker = self.tmp / f"paused-{uuid.uuid4().hex[:6]}"
        env = {**os.environ, **self.env, "PREFLOOP_PAUSE_AT": point, "PREFLOOP_PAUSE_FILE": str(marker)}
        proc = subprocess.Popen(
            self._cmd(), cwd=self.tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + timeout
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        reached = marker.exists()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if not reached:
            raise AssertionError(f"sync never reached {point}:\n{proc.stdout.read() if proc.stdout else ''}")
        return reached

    def annotate_pending(self) -> int:
        """Label every live task not labeled yet (real servers: through the API as an annotator)."""
        if self.annotate is None:
            return 0
        count = 0
        for task in self.backend.live_tasks():
            if task.pair_key not in self.annotated:
                self.annotate(task)
                self.annotated.add(task.pair_key)
                count += 1
        return count

    def check_nothing_lost_or_duplicated(self) -> dict[str, int]:
        """Every annotation at the server is in the store once; every task exists once at the server."""
        at_server = self.backend.pull_labels(since=None)
        server_ids = {(lb.source_id, lb.version) for lb in at_server.labels}
        engine = make_engine(self.db_url)
        try:
            with session_scope(engine) as session:
                project = self.backend.settings.project
                stored = set(
                    session.execute(
                        select(Label.source_id, Label.version).where(
                            Label.backend == self.backend.name, Label.project == project
                        )
                    ).all()
                )
                current = list(
                    session.scalars(
                        select(Label.source_id).where(Label.backend == self.backend.name, Label.is_current.is_(True))
                    )
                )
                tasks = list(session.scalars(select(Task).where(Task.backend == self.backend.name)))
                n_labels = session.scalar(select(func.count(Label.id))) or 0
        finally:
            engine.dispose()
        live = self.backend.live_tasks()
        assert server_ids <= stored, f"labels lost: {server_ids - stored}"
        assert len(current) == len(set(current)), "an annotation has two current versions"
        assert len(live) == len({t.pair_key for t in live}), "a pair has two tasks at the server"
        assert {t.pair_key for t in live} == {t.pair_key for t in _with_keys(self, tasks)}
        assert all(t.external_id for t in tasks), "a task was left unconfirmed"
        return {"labels": n_labels, "server_labels": len(server_ids), "tasks": len(live)}


def _with_keys(world: World, tasks: list[Task]) -> list[PushedTask]:
    engine = make_engine(world.db_url)
    try:
        with session_scope(engine) as session:
            from prefloop.store.models import Pair

            keys = dict(session.execute(select(Pair.id, Pair.key)).all())
    finally:
        engine.dispose()
    return [PushedTask(keys[t.pair_id], t.external_id, t.swapped, t.project) for t in tasks]


def make_world(
    tmp: Path,
    db_url: str,
    backend_section: dict[str, Any],
    *,
    n_pairs: int = 40,
    queue: int = 8,
    milestone: int = 8,
    annotate: Callable[[World, PushedTask], None] | None = None,
    env: dict[str, str] | None = None,
    lock_timeout_s: float = 0.0,
) -> World:
    """A store with ``n_pairs`` unlabeled pairs and a config that trains at ``milestone`` labels."""
    init_db(db_url)
    engine = make_engine(db_url)
    with session_scope(engine) as session:
        add_pairs(
            session,
            [PairRecord(r.prompt, r.response_a, r.response_b) for r in generated_records(n_pairs)],
            source="world",
        )
    engine.dispose()
    lines = [f'artifacts_dir = "{tmp / "artifacts"}"', f"lock_timeout_s = {lock_timeout_s}", "[backend]"]
    extra = backend_section.pop("extra", {})
    lines += [f"{k} = {json.dumps(v)}" for k, v in backend_section.items()]
    lines += ["[backend.extra]", *[f"{k} = {json.dumps(v)}" for k, v in extra.items()]]
    lines += [
        "[acquisition]",
        'strategy = "bald"',
        f"queue_size = {queue}",
        "[milestone]",
        f"every = {milestone}",
        f"min_labels = {milestone}",
        "[model]",
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in FAST_MODEL.items()]
    config_path = tmp / "prefloop.toml"
    config_path.write_text("\n".join(lines) + "\n")
    config = load_config(str(config_path))
    from prefloop.backends import make_backend

    backend = make_backend(config.backend.name, backend_settings(config))
    world = World(tmp, db_url, config_path, backend, env=dict(env or {}))
    if annotate is not None:
        world.annotate = lambda task: annotate(world, task)
    return world
