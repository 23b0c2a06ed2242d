"""``prefloop sync``: one cycle of the loop, safe to kill at any instant and to run again.

    pull labels → store them WITH the cursor (one transaction) → retrain at a milestone
    → rescore the pool → (opt-in) withdraw pending tasks the new model no longer wants
    → top the backend's queue up with the strategy's picks

Why a rerun always converges:

* labels and cursor commit together; the pull window overlaps and the store drops
  annotations it already has on ``(source_id, version)``;
* tasks are *planned* in the store (``external_id = ''``) and committed BEFORE the push;
  a rerun re-pushes planned tasks, and the backend's push is idempotent by pair key, so
  a crash between the server accepting a task and the store confirming it neither
  loses nor duplicates it;
* training records its model version only after the weights are saved, and identical
  weights (same data, same seed) are one version; scoring commits per chunk and skips
  pairs already scored by that version.

Only this module (and ``reward``) knows that the store, the model, acquisition and the
backends all exist.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from prefloop.backends import AnnotationBackend, BackendAuthError, BackendUnreachable, make_backend
from prefloop.config import LoopConfig, backend_settings
from prefloop.errors import (
    BackendError,
    ConfigError,
    ExitCode,
    Interrupted,
    LockHeld,
    PrefloopError,
    StoreError,
    StoreUnreachable,
    exit_code_for,
    underlying_error,
)
from prefloop.faults import checkpoint
from prefloop.loop.candidates import candidate_pairs
from prefloop.loop.record import record_labels
from prefloop.loop.sync_report import SyncReport, milestone
from prefloop.objectives import combined_reward
from prefloop.redact import redact
from prefloop.store.annotations import ask_for_labels, labeled_task_votes
from prefloop.store.db import session_scope, sync_lock
from prefloop.store.gold import gold_candidates
from prefloop.store.labels import get_cursor
from prefloop.store.models import ModelVersion, Task
from prefloop.store.queries import pairs_by_id
from prefloop.store.tasks import (
    count_pending,
    last_task_id,
    plan_tasks,
    planned_tasks,
    record_tasks,
    settle_refresh,
    stale_tasks,
)
from prefloop.store.versions import guesses_for, latest_model, model_names
from prefloop.types import PushedTask, TaskRequest

__all__ = [
    "ExitCode",
    "LockHeld",
    "SyncReport",
    "backend_settings",
    "error_entry",
    "run_follow_up",
    "run_sync",
    "save_traceback",
    "sync_lock",
]


_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (ConfigError, "config"),
    (StoreUnreachable, "store_unreachable"),
    (StoreError, "store"),
    (LockHeld, "lock_held"),
    (BackendUnreachable, "backend_unreachable"),
    (BackendAuthError, "backend_auth"),
    (BackendError, "backend"),
    (Interrupted, "interrupted"),
    (PrefloopError, "error"),
)


def error_entry(exc: BaseException) -> dict[str, Any]:
    """The last JSON line of a failed sync: ``{"step": "error", "type", "kind", "message", "exit_code"}``."""
    exc = underlying_error(exc)
    if isinstance(exc, KeyboardInterrupt):
        exc = Interrupted("SIGINT")
    kind = next((name for cls, name in _KINDS if isinstance(exc, cls)), "unexpected")
    return {
        "step": "error",
        "type": type(exc).__name__,
        "kind": kind,
        "message": str(exc) or type(exc).__name__,
        "exit_code": exit_code_for(exc),
    }


def save_traceback(artifacts_dir: str, exc: BaseException) -> str | None:
    """Append an unexpected error's traceback to ``artifacts_dir/logs/sync-errors.log``; return its path."""
    import traceback

    path = Path(artifacts_dir) / "logs" / "sync-errors.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
            handle.write(redact("".join(traceback.format_exception(exc))))  # a log file is output too
    except OSError:
        return None
    return str(path)


def _say(text: str) -> None:
    """A progress line on stderr (stdout carries only the JSON lines)."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[bold]sync[/bold] {escape(text)}", highlight=False)


@contextmanager
def _status(progress: bool, text: str) -> Iterator[None]:
    """A spinner on stderr while one backend call runs, then its line stays."""
    if not progress:
        yield
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True)
    with console.status(escape(text)):  # a project or model name is user data, never markup
        yield
    console.print(f"[bold]sync[/bold] {escape(text)}: done", highlight=False)


def json_logger(stream: Any = None) -> Callable[[dict[str, Any]], None]:
    """One JSON object per line, with a UTC timestamp: easy to grep from cron mail or a log file."""

    def emit(entry: dict[str, Any]) -> None:
        line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry}
        print(json.dumps(line, default=str), file=stream or sys.stdout, flush=True)

    return emit


# ---- locking ------------------------------------------------------------------------------

# ---- steps --------------------------------------------------------------------------------


def _requests(engine: Engine, tasks: list[Task], names: dict[int, str]) -> list[TaskRequest]:
    """What the backend needs to show each planned task; ``p_a`` is the choosing model's guess
    (shown to annotators only where the backend is configured to)."""
    with session_scope(engine) as session:
        pairs = pairs_by_id(session, [t.pair_id for t in tasks])
        guesses = guesses_for(session, [t.pair_id for t in tasks])
        return [
            TaskRequest(
                pair_key=pairs[t.pair_id].key,
                prompt=pairs[t.pair_id].prompt.text,
                response_a=pairs[t.pair_id].response_a.text,
                response_b=pairs[t.pair_id].response_b.text,
                strategy=t.strategy,
                score=t.score,
                model_version=names.get(t.model_version_id or -1),
                p_a=guesses.get((t.model_version_id or -1, t.pair_id)),
            )
            for t in tasks
        ]


def _push_planned(engine: Engine, backend: AnnotationBackend, project: str) -> int:
    """Push tasks planned but not confirmed (a previous run died mid-push, or this one planned them)."""
    with session_scope(engine) as session:
        planned = planned_tasks(session, backend.name, project)
        names = model_names(session)
    if not planned:
        return 0
    checkpoint("push:planned")
    pushed = backend.push_tasks(_requests(engine, planned, names))
    checkpoint("push:sent")
    with session_scope(engine) as session:
        record_tasks(session, backend.name, [PushedTask(p.pair_key, p.external_id, p.swapped, project) for p in pushed])
    return len(pushed)


def _pull(engine: Engine, backend: AnnotationBackend, project: str, labels_per_task: int) -> dict[str, Any]:
    with session_scope(engine) as session:
        cursor = get_cursor(session, backend.name, project)
    result = backend.pull_labels(since=cursor)
    checkpoint("pull:fetched")
    counts = record_labels(engine, backend.name, project, result, labels_per_task, move_cursor=True)
    return {
        "pulled": len(result.labels),
        "new": counts.new,
        "edited": counts.edited,
        "deleted": counts.deleted,
        "duplicates": counts.duplicates,
        "unknown_pairs": len(counts.unknown_pairs),
        "cursor": result.cursor,
    }


def _redundancy(engine: Engine, config: LoopConfig, backend: AnnotationBackend, project: str) -> dict[str, Any]:
    """Adaptive redundancy: reopen labeled tasks whose labels disagree or whose model guess is unsure.

    The backend is asked first and the store second; a crash in between is repaired by the next
    run, which finds the same tasks and asks again (asking twice for one total is a no-op).
    """
    from prefloop.annotators.redundancy import RedundancyPolicy, labels_wanted

    settings = config.annotators
    policy = RedundancyPolicy(max_labels=settings.max_annotators, uncertain_margin=settings.uncertain_margin)
    with session_scope(engine) as session:
        tasks = labeled_task_votes(session, backend.name, project)
    wanted = labels_wanted([t.votes for t in tasks], [t.p_a for t in tasks], policy)
    more = {t.pair_id: int(w) for t, w in zip(tasks, wanted, strict=True) if w > len(t.votes)}
    keys = {t.pair_id: t.pair_key for t in tasks}
    by_total: dict[int, list[str]] = {}
    for pair_id, total in more.items():
        by_total.setdefault(total, []).append(keys[pair_id])
    reopened = sum(backend.request_more_labels(group, total) for total, group in sorted(by_total.items()))
    with session_scope(engine) as session:
        ask_for_labels(session, backend.name, project, more)
    return {"labeled_tasks": len(tasks), "asked_for_more": len(more), "reopened": reopened}


def _milestone(engine: Engine, config: LoopConfig) -> tuple[bool, str | None, int]:
    with session_scope(engine) as session:
        due, model, since, _ = milestone(session, config)
    return due, model, since


def _audit(engine: Engine, config: LoopConfig, name: str, progress: bool) -> dict[str, Any]:
    """The milestone audit: ``[milestone] audit_pairs`` labelled pairs, stored with the new version
    and logged (this step's entry, and W&B or the metrics JSON where ``[model]`` names one)."""
    from prefloop.loop.audit import audit_version, probe_shifts
    from prefloop.model.tracking import log_audit

    t = time.perf_counter()
    if progress:
        _say(f"auditing {name} on {config.milestone.audit_pairs} labelled pairs")
    shifts = probe_shifts(audit_version(engine, name, config.milestone.audit_pairs, progress=progress))
    log_audit(config.model, name, shifts)
    return {"step": "audit", "seconds": round(time.perf_counter() - t, 3), "model": name, **shifts}


def _gold_picks(engine: Engine, config: LoopConfig, backend: str, project: str, need: int) -> list[int]:
    """Gold pairs to mix into a top-up of ``need`` tasks: ``gold_rate`` of it on average (the
    fraction rounded at random, so small top-ups get their share over time)."""
    rate = config.annotators.gold_rate
    if rate <= 0 or need <= 0:
        return []
    with session_scope(engine) as session:
        candidates = gold_candidates(session, backend, project)
        n_tasks = last_task_id(session)
    rng = np.random.default_rng([config.acquisition.seed, n_tasks, 15])
    expected = need * rate
    n = min(len(candidates), int(expected) + int(rng.random() < expected - int(expected)))
    return sorted(int(p) for p in rng.choice(candidates, size=n, replace=False)) if n else []


def _top_up(
    engine: Engine,
    config: LoopConfig,
    backend: AnnotationBackend,
    project: str,
    skip: set[int] | frozenset[int] = frozenset(),
    progress: bool = False,
) -> dict[str, Any]:
    with session_scope(engine) as session:
        pending = count_pending(session, backend.name, project)
        model = latest_model(session)
    need = max(0, config.acquisition.queue_size - pending)
    if need == 0:
        return {"pending": pending, "planned": 0, "pushed": 0}
    gold = _gold_picks(engine, config, backend.name, project, need)
    chosen, scores, strategy, params = candidate_pairs(
        engine, config, need - len(gold), model, skip=skip, progress=progress
    )
    # a gold check looks like its batch: same strategy and model, a score drawn from the batch's
    gold_scores = (
        np.random.default_rng(len(chosen)).choice(scores, size=len(gold)) if len(scores) else [0.0] * len(gold)
    )
    picks = [
        *zip(chosen, scores, [False] * len(chosen), strict=True),
        *zip(gold, gold_scores, [True] * len(gold), strict=True),
    ]
    with session_scope(engine) as session:  # plan first: a crash after this is finished by the next run
        plan_tasks(
            session,
            backend.name,
            project,
            picks,
            strategy=strategy,
            params=params,
            model_version_id=model.id if model else None,
        )
    with _status(progress, f"pushing {len(chosen) + len(gold)} tasks to {backend.name}"):
        pushed = _push_planned(engine, backend, project)
    return {
        "pending": pending,
        "planned": len(chosen) + len(gold),
        "gold": len(gold),
        "pushed": pushed,
        "strategy": strategy,
    }


def _stale_tasks(engine: Engine, backend: AnnotationBackend, project: str, model: ModelVersion) -> dict[int, str]:
    """Pushed, pending tasks without a live label that a model older than ``model`` chose: pair id → key."""
    with session_scope(engine) as session:
        return stale_tasks(session, backend.name, project, model.id)


def _refresh(
    engine: Engine,
    config: LoopConfig,
    backend: AnnotationBackend,
    project: str,
    model: ModelVersion,
    stale: dict[int, str],
) -> tuple[dict[str, Any], set[int]]:
    """Re-rank stale tasks with the newest model among the pool; withdraw those below its top queue_size.

    Kept tasks are re-attributed to the new model. A backend keeps a task that got an
    annotation meanwhile, so only tasks that ``live_tasks`` no longer lists are marked
    withdrawn. A stale task already gone from the backend (a run that died between the
    withdrawal and the store update, or someone deleting it there) is marked withdrawn first,
    so a rerun converges.
    """
    live = {t.pair_key for t in backend.live_tasks()}
    vanished = {pair_id for pair_id, key in stale.items() if key not in live}
    stale = {pair_id: key for pair_id, key in stale.items() if pair_id not in vanished}
    chosen, scores, strategy, params = candidate_pairs(
        engine, config, config.acquisition.queue_size, model, include=set(stale)
    )
    keep = {pair_id: float(score) for pair_id, score in zip(chosen, scores, strict=True) if pair_id in stale}
    drop = [pair_id for pair_id in stale if pair_id not in keep]
    gone = set(vanished)
    if drop:
        backend.withdraw_tasks([stale[pair_id] for pair_id in drop])
        live = {t.pair_key for t in backend.live_tasks()}
        gone |= {pair_id for pair_id in drop if stale[pair_id] not in live}
    with session_scope(engine) as session:
        settle_refresh(
            session, backend.name, project, keep, gone, model_version_id=model.id, strategy=strategy, params=params
        )
    return {
        "stale": len(stale) + len(vanished),
        "kept": len(keep),
        "withdrawn": len(gone) - len(vanished),
        "vanished": len(vanished),
    }, gone


def _follow_up(
    engine: Engine,
    config: LoopConfig,
    backend: AnnotationBackend,
    project: str,
    report: SyncReport,
    log: Callable[[dict[str, Any]], None],
    progress: bool,
) -> None:
    """What follows new labels, under the sync lock: redundancy, the milestone retrain, rescoring,
    the refresh and the queue top-up (a poll's cycle and ``serve``'s worker run the same steps)."""
    from prefloop.loop.reward import score_pool
    from prefloop.loop.train import train_objectives

    if config.annotators.redundancy == "adaptive":
        t = time.perf_counter()
        if not backend.supports_more_labels:
            raise ConfigError(
                f'[annotators] redundancy = "adaptive" needs a backend that can ask for more '
                f'labels on one task; {backend.name} cannot: use "fixed"'
            )
        more = _redundancy(engine, config, backend, project)
        report.changed |= more["asked_for_more"] > 0
        log(report.step("redundancy", t, **more))

    t = time.perf_counter()
    due, current, since = _milestone(engine, config)
    if due:
        if progress:
            _say(f"training at the milestone: {since} new labels")
        result = train_objectives(
            engine,
            config.model,
            config.artifacts_dir,
            config.objectives.dimensions,
            parent=current,
            progress=progress,
            aggregate=config.annotators.aggregate,
            annotators=config.annotators,
        )
        report.changed = True
        log(
            report.step(
                "train",
                t,
                model=result.name,
                parent=result.parent,
                new_labels=result.n_new,
                replay_pool=result.n_replay_pool,
                metrics={
                    k: result.report.get(k)
                    for k in ("val_loss", "train_loss", "n_pairs", "pairs_per_s", "temperature")
                    if k in result.report
                },
                warnings=result.report.get("warnings", []),
            )
        )
        if config.milestone.audit_pairs > 0:
            log(_audit(engine, config, result.name, progress))
    else:
        needed = config.milestone.min_labels if current is None else config.milestone.every
        log(report.step("train", t, skipped=True, due=due, model=current, labels_since_model=since, milestone=needed))

    t = time.perf_counter()
    with session_scope(engine) as session:
        model = latest_model(session)
    refresh = config.acquisition.refresh_after_retrain and model is not None
    stale = _stale_tasks(engine, backend, project, model) if refresh and model is not None else {}
    if model is not None:
        if progress:
            _say(f"scoring the pool with {model.name}")
        name, scored = score_pool(
            engine, model.name, progress=progress, also=list(stale), objectives=combined_reward(config.objectives)
        )
        report.model = name
        log(report.step("score", t, model=name, scored=scored))

    withdrawn: set[int] = set()
    if stale and model is not None:
        t = time.perf_counter()
        refreshed, withdrawn = _refresh(engine, config, backend, project, model, stale)
        report.changed |= bool(withdrawn)
        log(report.step("refresh", t, **refreshed))

    t = time.perf_counter()
    pushed = _top_up(engine, config, backend, project, skip=withdrawn, progress=progress)
    report.changed |= bool(pushed.get("pushed"))
    log(report.step("push", t, **pushed))


def run_sync(
    engine: Engine,
    config: LoopConfig,
    *,
    dry_run: bool = False,
    progress: bool = False,
    log: Callable[[dict[str, Any]], None] | None = None,
    backend: AnnotationBackend | None = None,
) -> SyncReport:
    """One cycle; raises a ``PrefloopError`` (``LockHeld``, ``BackendUnreachable``, ...) for the CLI to map.

    ``dry_run`` reports what the cycle would do and writes nothing anywhere (``sync_dry_run``).
    """
    log = log or json_logger()
    if dry_run:
        from prefloop.loop.sync_dry_run import dry_run_cycle

        return dry_run_cycle(engine, config, log=log, backend=backend)
    report = SyncReport()
    project = config.backend.project
    with sync_lock(engine, config.lock_timeout_s):
        t = time.perf_counter()
        backend = backend or make_backend(config.backend.name, backend_settings(config))
        health = backend.health()
        health.raise_unless_ok(config.backend.name)
        backend.ensure_project()
        with _status(progress, f"pushing tasks planned by an earlier run to {backend.name}"):
            resumed = _push_planned(engine, backend, project)
        log(report.step("connect", t, backend=backend.name, project=project, resumed_push=resumed))
        t = time.perf_counter()
        with _status(progress, f"pulling labels from {backend.name} ({project})"):
            pulled = _pull(engine, backend, project, config.backend.annotators_per_pair)
        log(report.step("pull", t, **pulled))
        report.changed |= pulled["new"] + pulled["edited"] + pulled["deleted"] > 0
        _follow_up(engine, config, backend, project, report, log, progress)
    return report


def run_follow_up(
    engine: Engine,
    config: LoopConfig,
    backend: AnnotationBackend,
    *,
    log: Callable[[dict[str, Any]], None] | None = None,
) -> SyncReport:
    """The steps after a pull (``_follow_up``), for labels that arrived by webhook: ``serve``'s worker.

    Takes the same store lock as ``sync`` (waiting up to ``lock_timeout_s``), so a poll and the
    worker never retrain or push at the same time.
    """
    log = log or json_logger()
    report = SyncReport()
    project = config.backend.project
    with sync_lock(engine, config.lock_timeout_s):
        backend.ensure_project()
        resumed = _push_planned(engine, backend, project)
        if resumed:
            log({"step": "connect", "resumed_push": resumed})
        _follow_up(engine, config, backend, project, report, log, progress=False)
    return report
