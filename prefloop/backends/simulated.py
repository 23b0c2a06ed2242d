"""Simulated annotators: a backend that answers from known labels, with noise, ties and latency.

It honours the same contract as Label Studio and Argilla (``base.py``) and keeps its state
in a small SQLite file in a folder (``settings.url`` or ``extra["state_dir"]``), so
``prefloop sync`` run from cron sees the same tasks and annotations every time.

Settings read from ``settings.extra`` (all optional):

* ``oracle``: ``{pair_key: "a" | "b" | "tie"}`` in canonical orientation, or ``oracle_path``:
  a JSONL file of ``{"pair_key": ..., "choice": ...}``. Pairs without an answer stay pending.
* ``annotators``: ``[{"id": "ann-1", "accuracy": 0.9}, ...]``; default one annotator
  ``"sim-1"`` with accuracy ``1 − noise_rate``. An annotator without ``accuracy`` gets
  ``1 − noise_rate``. ``{"id": "lazy", "clicks": "first"}`` always clicks the response shown
  first (``"second"``: the other one), whatever the pair: a position-biased annotator.
* ``noise_rate`` (0.0): chance an annotator without own accuracy picks the wrong side.
* ``tie_rate`` (0.0): chance any annotator answers "tie" on a decisive pair.
* ``annotators_per_pair``: how many annotators answer each task (default
  ``settings.annotators_per_pair``).
* ``latency_pulls`` (0): a task is answered only once this many ``pull_labels`` calls have
  passed since its push (0 = answered in the first pull after the push).
* ``latency_s`` (0.0): and only once this many seconds have passed since its push.
* ``seed`` (0): answers are drawn from an RNG derived from (seed, pair, annotator), so
  they do not depend on call order, batch sizes or process boundaries.

The simulated annotator sees the pair in its presentation order (``presentation_swapped``)
and clicks a side on screen; the backend maps that click back to the canonical pair, the
same code path the test driver (``annotate_as`` …) and real backends use.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from prefloop.backends.base import (
    AnnotationBackend,
    BackendError,
    BackendSettings,
    Health,
    presentation_swapped,
    undo_presentation,
)
from prefloop.errors import ConfigError
from prefloop.types import AnnotatorRef, Choice, PulledLabel, PullResult, PushedTask, TaskRequest

__all__ = ["SimulatedBackend"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS projects (name TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, pair_key TEXT NOT NULL,
    prompt TEXT, response_a TEXT, response_b TEXT, swapped INTEGER NOT NULL,
    status TEXT NOT NULL, pushed_at REAL NOT NULL, pushed_after_pull INTEGER NOT NULL,
    simulated INTEGER NOT NULL DEFAULT 0, wanted INTEGER, UNIQUE (project, pair_key));
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, pair_key TEXT NOT NULL,
    annotator TEXT NOT NULL, shown TEXT NOT NULL, choice TEXT NOT NULL, swapped INTEGER NOT NULL,
    strength REAL, rationale TEXT, version INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL, simulated INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS annotations_seq ON annotations (project, seq);
CREATE INDEX IF NOT EXISTS annotations_pair ON annotations (project, pair_key);
"""


def _load_oracle(extra: dict[str, Any]) -> dict[str, Choice]:
    oracle: dict[str, Choice] = {}
    path = extra.get("oracle_path")
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        row = json.loads(line)
                        oracle[row["pair_key"]] = Choice(row["choice"])
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"[backend.extra] oracle_path {path}: the simulator's oracle cannot be read "
                f"({type(exc).__name__}: {exc}); it holds one JSON line per pair: "
                '{"pair_key": ..., "choice": "a" | "b" | "tie"}'
            ) from None
    for key, choice in (extra.get("oracle") or {}).items():
        oracle[key] = Choice(choice)
    return oracle


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _check_shown(shown: str) -> None:
    if shown not in ("a", "b", "tie", "skip"):
        raise BackendError(f"an on-screen choice is 'a', 'b', 'tie' or 'skip', not {shown!r}")


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


class SimulatedBackend(AnnotationBackend):
    """Oracle-driven annotators behind the ``AnnotationBackend`` contract, persisted in a folder."""

    name = "simulated"
    supports_more_labels = True

    def __init__(self, settings: BackendSettings) -> None:
        super().__init__(settings)
        extra = settings.extra
        folder = extra.get("state_dir") or settings.url
        if not folder:
            raise BackendError("the simulated backend needs a state folder: set settings.url or extra['state_dir']")
        self.state_dir = Path(str(folder).removeprefix("file://"))
        self.oracle = _load_oracle(extra)
        self.noise_rate = float(extra.get("noise_rate", 0.0))
        self.tie_rate = float(extra.get("tie_rate", 0.0))
        default_acc = 1.0 - self.noise_rate
        raw = extra.get("annotators") or [{"id": "sim-1"}]
        self.annotators: list[tuple[str, float]] = [(str(a["id"]), float(a.get("accuracy", default_acc))) for a in raw]
        self.clicks: dict[str, str] = {str(a["id"]): str(a["clicks"]) for a in raw if a.get("clicks")}
        self.annotators_per_pair = int(extra.get("annotators_per_pair", settings.annotators_per_pair))
        if not 1 <= self.annotators_per_pair <= len(self.annotators):
            raise BackendError(
                f"annotators_per_pair={self.annotators_per_pair} needs that many annotators "
                f"(have {len(self.annotators)}): add entries to extra['annotators']"
            )
        self.latency_pulls = int(extra.get("latency_pulls", 0))
        self.latency_s = float(extra.get("latency_s", 0.0))
        self.seed = int(extra.get("seed", 0))
        self.clock: Callable[[], float] = time.time  # tests may replace it

    # -- storage ------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.state_dir / "simulated.sqlite3"

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One transaction; BEGIN IMMEDIATE serialises writers across processes."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.executescript(_SCHEMA)
            if "wanted" not in {row[1] for row in conn.execute("PRAGMA table_info(tasks)")}:
                conn.execute("ALTER TABLE tasks ADD COLUMN wanted INTEGER")  # a state folder from before
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @staticmethod
    def _bump(conn: sqlite3.Connection, key: str) -> int:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET value = value + 1", (key,)
        )
        return int(conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _task(self, conn: sqlite3.Connection, pair_key: str) -> sqlite3.Row:
        row = conn.execute(
            "SELECT * FROM tasks WHERE project = ? AND pair_key = ? AND status = 'live'",
            (self.settings.project, pair_key),
        ).fetchone()
        if row is None:
            raise BackendError(f"no live task for pair {pair_key} in project {self.settings.project!r}")
        return row

    def _pushed(self, row: sqlite3.Row) -> PushedTask:
        return PushedTask(
            pair_key=row["pair_key"],
            external_id=str(row["id"]),
            swapped=bool(row["swapped"]),
            project=self.settings.project,
        )

    # -- the contract ---------------------------------------------------------------

    def health(self) -> Health:
        try:
            with self._db() as conn:
                n = conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        except (OSError, sqlite3.Error) as exc:
            return Health(False, f"state folder {self.state_dir} is not usable: {exc}")
        return Health(True, f"simulated backend at {self.state_dir} ({n} tasks)", version="1")

    def ensure_project(self) -> str:
        with self._db() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO projects (name, created_at) VALUES (?, ?)", (self.settings.project, self.clock())
            )
        return f"simulated:{self.settings.project}"

    def push_tasks(self, tasks: Sequence[TaskRequest]) -> list[PushedTask]:
        self.ensure_project()
        out: list[PushedTask] = []
        size = max(1, self.settings.batch_size)
        for start in range(0, len(tasks), size):
            with self._db() as conn:
                pulls = self._meta(conn, "pulls")
                for req in tasks[start : start + size]:
                    swapped = presentation_swapped(
                        req.pair_key, self.settings.order_seed, self.settings.randomize_order
                    )
                    conn.execute(
                        "INSERT INTO tasks (project, pair_key, prompt, response_a, response_b, swapped, "
                        "status, pushed_at, pushed_after_pull) VALUES (?, ?, ?, ?, ?, ?, 'live', ?, ?) "
                        "ON CONFLICT (project, pair_key) DO UPDATE SET status = 'live', "
                        "pushed_at = CASE WHEN status = 'live' THEN pushed_at ELSE excluded.pushed_at END, "
                        "pushed_after_pull = CASE WHEN status = 'live' THEN pushed_after_pull "
                        "ELSE excluded.pushed_after_pull END",
                        (
                            self.settings.project,
                            req.pair_key,
                            req.prompt,
                            req.response_a,
                            req.response_b,
                            int(swapped),
                            self.clock(),
                            pulls,
                        ),
                    )
                    out.append(self._pushed(self._task(conn, req.pair_key)))
        return out

    def live_tasks(self) -> list[PushedTask]:
        with self._db() as conn:
            rows = conn.execute(
                "SELECT * FROM tasks WHERE project = ? AND status = 'live' ORDER BY id", (self.settings.project,)
            ).fetchall()
        return [self._pushed(r) for r in rows]

    def pull_labels(self, since: str | None = None) -> PullResult:
        """Let the simulated annotators work, then return events after ``since`` (overlap: one event)."""
        with self._db() as conn:
            pulls = self._bump(conn, "pulls")
            self._simulate(conn, pulls)
            start = 0 if since is None else int(since)  # seq >= cursor: re-reads the last event on purpose
            rows = conn.execute(
                "SELECT * FROM annotations WHERE project = ? AND seq >= ? ORDER BY seq", (self.settings.project, start)
            ).fetchall()
            touched = sorted({r["pair_key"] for r in rows})
            alive: dict[str, frozenset[str]] = {}
            for key in touched:
                ids = conn.execute(
                    "SELECT id FROM annotations WHERE project = ? AND pair_key = ? AND deleted = 0",
                    (self.settings.project, key),
                ).fetchall()
                alive[key] = frozenset(str(r[0]) for r in ids)
            cursor = self._meta(conn, "seq")
        labels = [self._label(r) for r in rows if not r["deleted"]]
        return PullResult(labels=labels, cursor=str(cursor), alive=alive)

    def withdraw_tasks(self, pair_keys: Sequence[str]) -> int:
        gone = 0
        with self._db() as conn:
            for key in pair_keys:
                has = conn.execute(
                    "SELECT 1 FROM annotations WHERE project = ? AND pair_key = ? AND deleted = 0",
                    (self.settings.project, key),
                ).fetchone()
                if has is None:
                    cur = conn.execute(
                        "UPDATE tasks SET status = 'withdrawn' WHERE project = ? AND pair_key = ? AND status = 'live'",
                        (self.settings.project, key),
                    )
                    gone += cur.rowcount
        return gone

    def request_more_labels(self, pair_keys: Sequence[str], total: int) -> int:
        """Reopen live tasks for ``total`` annotators; the next simulated annotators answer them."""
        if not 1 <= total <= len(self.annotators):
            raise BackendError(
                f"{total} labels per task needs that many simulated annotators (have {len(self.annotators)})"
            )
        reopened = 0
        with self._db() as conn:
            for key in pair_keys:
                cur = conn.execute(
                    "UPDATE tasks SET wanted = ?, simulated = 0 WHERE project = ? AND pair_key = ? "
                    "AND status = 'live' AND COALESCE(wanted, 0) < ?",
                    (total, self.settings.project, key, total),
                )
                reopened += cur.rowcount
        return reopened

    # -- annotations: one write path for simulated annotators and the test driver ------

    def _label(self, row: sqlite3.Row) -> PulledLabel:
        return PulledLabel(
            pair_key=row["pair_key"],
            annotator=AnnotatorRef(row["annotator"]),
            choice=Choice(row["choice"]),
            source_id=str(row["id"]),
            version=str(row["version"]),
            strength=row["strength"],
            rationale=row["rationale"],
            created_at=_ts(row["created_at"]),
            updated_at=_ts(row["updated_at"]),
            raw={"shown": row["shown"], "swapped": bool(row["swapped"]), "simulated": bool(row["simulated"])},
        )

    def _write(
        self,
        conn: sqlite3.Connection,
        pair_key: str,
        annotator: str,
        shown: str,
        strength: float | None,
        rationale: str | None,
        simulated: bool,
    ) -> str:
        task = self._task(conn, pair_key)
        _check_shown(shown)
        choice = undo_presentation(shown, bool(task["swapped"]))
        seq, now = self._bump(conn, "seq"), self.clock()
        cur = conn.execute(
            "INSERT INTO annotations (project, pair_key, annotator, shown, choice, swapped, strength, "
            "rationale, version, seq, created_at, updated_at, simulated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
            (
                self.settings.project,
                pair_key,
                annotator,
                shown,
                choice,
                task["swapped"],
                strength,
                rationale,
                seq,
                now,
                now,
                int(simulated),
            ),
        )
        return str(cur.lastrowid)

    def _answer(self, pair_key: str, annotator: str, accuracy: float, truth: Choice) -> Choice:
        """What this annotator believes, canonical orientation; from an RNG of (seed, pair, annotator)."""
        u_tie, u_acc, u_side = _rng(self.seed, pair_key, annotator).random(3)
        if truth is Choice.TIE:
            return Choice.TIE if u_acc < accuracy else (Choice.A if u_side < 0.5 else Choice.B)
        if u_tie < self.tie_rate:
            return Choice.TIE
        return truth if u_acc < accuracy else truth.flipped()

    def _who(self, pair_key: str, n: int | None = None) -> list[tuple[str, float]]:
        ranked = sorted(self.annotators, key=lambda a: _rng(self.seed, "assign", pair_key, a[0]).random())
        return ranked[: n or self.annotators_per_pair]

    def _simulate(self, conn: sqlite3.Connection, pulls: int) -> None:
        """Annotators answer every live, unanswered task with an oracle label whose latency has passed."""
        now = self.clock()
        rows = conn.execute(
            "SELECT * FROM tasks WHERE project = ? AND status = 'live' AND simulated = 0 ORDER BY id",
            (self.settings.project,),
        ).fetchall()
        for task in rows:
            truth = self.oracle.get(task["pair_key"])
            if truth is None or truth is Choice.SKIP:
                continue
            waited_pulls = pulls - task["pushed_after_pull"]
            if waited_pulls <= self.latency_pulls or now - task["pushed_at"] < self.latency_s:
                continue
            done = {
                r[0]
                for r in conn.execute(
                    "SELECT annotator FROM annotations WHERE project = ? AND pair_key = ?",
                    (self.settings.project, task["pair_key"]),
                )
            }
            for annotator, accuracy in self._who(task["pair_key"], task["wanted"]):
                if annotator in done:  # a reopened task: only the new annotators answer
                    continue
                believed = self._answer(task["pair_key"], annotator, accuracy, truth)
                # the annotator clicks a side of the screen; _write maps it back
                shown = undo_presentation(believed.value, bool(task["swapped"]))
                if annotator in self.clicks:  # position bias: the same screen side every time
                    shown = "a" if self.clicks[annotator] == "first" else "b"
                self._write(conn, task["pair_key"], annotator, shown, None, None, simulated=True)
            conn.execute("UPDATE tasks SET simulated = 1 WHERE id = ?", (task["id"],))

    # -- the driver API (tests and demos act as annotators) -----------------------------

    def annotate_as(
        self,
        pair_key: str,
        annotator_id: str,
        shown_choice: str,
        strength: float | None = None,
        rationale: str | None = None,
    ) -> str:
        """Submit an annotation as ``annotator_id``; ``shown_choice`` is the on-screen pick
        ('a' = shown first). Returns the annotation id (the label's ``source_id``)."""
        with self._db() as conn:
            return self._write(conn, pair_key, annotator_id, shown_choice, strength, rationale, simulated=False)

    def skip(self, pair_key: str, annotator_id: str) -> str:
        """Skip the task as ``annotator_id``; it comes back as ``Choice.SKIP``."""
        return self.annotate_as(pair_key, annotator_id, "skip")

    def edit(
        self, annotation_id: str, shown_choice: str, strength: float | None = None, rationale: str | None = None
    ) -> None:
        """Change an annotation; its version goes up, so the next pull sees a new version."""
        with self._db() as conn:
            row = self._annotation(conn, annotation_id)
            _check_shown(shown_choice)
            choice = undo_presentation(shown_choice, bool(row["swapped"]))
            conn.execute(
                "UPDATE annotations SET shown = ?, choice = ?, strength = COALESCE(?, strength), "
                "rationale = COALESCE(?, rationale), version = version + 1, seq = ?, updated_at = ? "
                "WHERE id = ?",
                (shown_choice, choice, strength, rationale, self._bump(conn, "seq"), self.clock(), row["id"]),
            )

    def delete(self, annotation_id: str) -> None:
        """Delete an annotation; the next pull's ``alive`` no longer lists it."""
        with self._db() as conn:
            row = self._annotation(conn, annotation_id)
            conn.execute(
                "UPDATE annotations SET deleted = 1, seq = ?, updated_at = ? WHERE id = ?",
                (self._bump(conn, "seq"), self.clock(), row["id"]),
            )

    def _annotation(self, conn: sqlite3.Connection, annotation_id: str) -> sqlite3.Row:
        row = conn.execute(
            "SELECT * FROM annotations WHERE id = ? AND project = ? AND deleted = 0",
            (int(annotation_id), self.settings.project),
        ).fetchone()
        if row is None:
            raise BackendError(f"no live annotation {annotation_id} in project {self.settings.project!r}")
        return row
