"""The loop with the simulated backend: cycles converge, milestones retrain, dry runs write nothing."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from filelock import FileLock
from sqlalchemy import Engine, func, select

from prefloop.config import load_config
from prefloop.loop.demo import generated_records, write_oracle
from prefloop.loop.sync import run_sync
from prefloop.store.db import session_scope
from prefloop.store.models import Label, ModelVersion, Pair, Prediction, Task
from prefloop.store.pairs import add_pairs
from prefloop.store.queries import store_stats
from prefloop.types import PairRecord
from tests.clirun import clean_env, prefloop

FAST_MODEL = {"mode": "heads", "k": 3, "max_length": 64, "head_epochs": 30, "head_patience": 5}


def write_config(tmp_path: Path, **backend_extra: object) -> Path:
    oracle = write_oracle(generated_records(60), tmp_path / "oracle.jsonl")
    extra = {"oracle_path": str(oracle), **backend_extra}
    text = f"""
artifacts_dir = "{tmp_path / "artifacts"}"
[backend]
name = "simulated"
project = "loop-test"
url = "{tmp_path / "sim"}"
[backend.extra]
{chr(10).join(f"{k} = {json.dumps(v)}" for k, v in extra.items())}
[acquisition]
strategy = "diverse:bald"
queue_size = 10
max_per_prompt = 1
[milestone]
every = 10
min_labels = 10
[model]
{chr(10).join(f"{k} = {json.dumps(v)}" for k, v in FAST_MODEL.items())}
"""
    path = tmp_path / "prefloop.toml"
    path.write_text(text)
    return path


def fill(engine: Engine, n: int = 60) -> None:
    with session_scope(engine) as session:
        add_pairs(
            session, [PairRecord(r.prompt, r.response_a, r.response_b) for r in generated_records(n)], source="gen"
        )


def test_cycles_pull_train_score_and_push_without_duplicates(engine: Engine, tmp_path: Path) -> None:
    fill(engine)
    config = load_config(str(write_config(tmp_path)))
    logs: list[dict] = []
    first = run_sync(engine, config, log=logs.append)
    assert [s["step"] for s in first.steps] == ["connect", "pull", "train", "push"]
    push = logs[-1]
    assert push["step"] == "push" and push["pushed"] == 10 and push["strategy"] == "random"

    run_sync(engine, config, log=logs.append)  # pulls 10 labels -> first model -> scores -> pushes 10
    with session_scope(engine) as session:
        assert session.scalar(select(func.count(Label.id))) == 10
        model = session.scalars(select(ModelVersion)).one()
        assert model.parent_id is None and model.label_snapshot["n_labels"] == 10
        assert session.scalar(select(func.count(Prediction.id))) > 0
        strategies = set(session.scalars(select(Task.strategy)))
    assert strategies == {"random", "diverse:bald"}

    run_sync(engine, config, log=logs.append)  # +10 labels -> incremental retrain from the first model
    run_sync(engine, config, log=logs.append)
    with session_scope(engine) as session:
        models = list(session.scalars(select(ModelVersion).order_by(ModelVersion.id)))
        assert len(models) == 3 and models[1].parent_id == models[0].id and models[2].parent_id == models[1].id
        labels = list(session.scalars(select(Label)).unique())
        tasks = list(session.scalars(select(Task)))
    assert len(labels) == 30 and len({lb.source_id for lb in labels}) == 30
    assert len(tasks) == 40 and len({t.pair_id for t in tasks}) == 40, "no pair was ever selected twice"
    assert {lb.pair_id for lb in labels} <= {t.pair_id for t in tasks}


def test_balpm_spreads_each_batch_away_from_the_pairs_already_acquired(sqlite_engine: Engine, tmp_path: Path) -> None:
    fill(sqlite_engine)
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('strategy = "diverse:bald"', 'strategy = "balpm"'))
    config = load_config(str(path))
    for _ in range(3):  # random cold start; then BAL-PM with 10 labels, then with 20
        run_sync(sqlite_engine, config, log=lambda _: None)
    with session_scope(sqlite_engine) as session:
        batches = [
            (t.strategy, t.strategy_params.get("acquired"))
            for t in session.scalars(select(Task).order_by(Task.id))
            if t.strategy == "balpm"
        ]
    # each BAL-PM batch starts from every pair labelled or pending before it (10, then 20),
    # not from the empty set the pool alone would give (labelled pairs are not candidates)
    assert sorted({acquired for _, acquired in batches}) == [10, 20] and len(batches) == 20


@pytest.mark.slow  # three syncs, two of them training heads (~2 min on 2 shared cores)
def test_length_aware_acquisition_runs_through_sync_and_is_recorded_on_its_tasks(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    fill(sqlite_engine)
    path = write_config(tmp_path)
    path.write_text(
        path.read_text().replace(
            'strategy = "diverse:bald"', 'strategy = "length_aware"\nlength_share = 0.5\nlength_quota = "against"'
        )
    )
    config = load_config(str(path))
    for _ in range(3):  # random cold start; then two batches chosen on length-residual rewards
        run_sync(sqlite_engine, config, log=lambda _: None)
    with session_scope(sqlite_engine) as session:
        tasks = [t for t in session.scalars(select(Task).order_by(Task.id)) if t.strategy != "random"]
    assert len(tasks) == 20 and {t.strategy for t in tasks} == {"length_aware:noise_aware"}
    params = tasks[0].strategy_params
    assert (params["share"], params["quota"], params["inner"]) == (0.5, "against", "noise_aware")
    assert isinstance(params["length_slope"], float), "the model's fitted length reliance, on each task"
    assert 0 <= params["length_quota_picks"] <= 5, "at most round(0.5 x 10) pairs reserved per batch"


def test_dry_run_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    fill(engine)
    config = load_config(str(write_config(tmp_path)))
    run_sync(engine, config, log=lambda _: None)
    with session_scope(engine) as session:
        before = store_stats(session)
    logs: list[dict] = []
    run_sync(engine, config, dry_run=True, log=logs.append)
    with session_scope(engine) as session:
        assert store_stats(session) == before
    pull = next(s for s in logs if s["step"] == "pull")
    assert pull["new"] == 10, "the dry run reports the labels it would store"
    run_sync(engine, config, log=lambda _: None)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count(Label.id))) == 10, "nothing was lost by the dry run"


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return prefloop(tmp_path, "--db", str(tmp_path / "s.db"), *args)


@pytest.mark.slow  # four full sync processes, one against a closed port (~15 s loaded)
def test_exit_codes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert _cli(tmp_path, "init").returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[acquisition]\nqueue_size = 'many'\n")
    proc = _cli(tmp_path, "sync", "--config", str(bad))
    assert proc.returncode == 2 and "queue_size must be int" in proc.stdout

    unreachable = tmp_path / "ls.toml"
    unreachable.write_text(
        '[backend]\nname = "label_studio"\nurl = "http://127.0.0.1:9"\napi_key = "x"\nretries = 1\nbackoff_s = 0.05\n'
    )
    proc = _cli(tmp_path, "sync", "--config", str(unreachable))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "backend_unreachable" in proc.stdout and '"x"' not in proc.stdout

    with FileLock(str(tmp_path / "s.db.sync.lock")):
        proc = _cli(tmp_path, "sync", "--config", str(config))
    assert proc.returncode == 4 and "lock_held" in proc.stdout

    proc = _cli(tmp_path, "sync", "--config", str(config))  # empty store: nothing to pull, nothing to push
    assert proc.returncode == 5, proc.stdout + proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["step"] for line in lines] == ["connect", "pull", "train", "push"]


def test_config_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "prefloop.toml").write_text('[backend]\nname = "label_studio"\nurl = "http://ls:8080"\n')
    env = {"LABEL_STUDIO_API_KEY": "super-secret-token"}
    proc = prefloop(tmp_path, "config", "show", env=clean_env(**env))
    shown = tomllib.loads(proc.stdout)
    assert shown["backend"]["api_key"] == "***" and "super-secret-token" not in proc.stdout
    assert 'api_key = "***"  # env LABEL_STUDIO_API_KEY' in proc.stdout
    assert 'url = "http://ls:8080"  # file prefloop.toml' in proc.stdout


def test_refresh_after_retrain_withdraws_what_the_new_model_no_longer_wants(engine: Engine, tmp_path: Path) -> None:
    from prefloop.backends import make_backend
    from prefloop.loop.sync import backend_settings

    fill(engine, 30)
    path = tmp_path / "prefloop.toml"  # no oracle: tasks stay pending until the test annotates them
    path.write_text(f"""
artifacts_dir = "{tmp_path / "artifacts"}"
[backend]
name = "simulated"
project = "refresh"
url = "{tmp_path / "sim"}"
[acquisition]
strategy = "bald"
queue_size = 5
max_per_prompt = 1
refresh_after_retrain = true
[milestone]
every = 2
min_labels = 5
[model]
{chr(10).join(f"{k} = {json.dumps(v)}" for k, v in FAST_MODEL.items())}
""")
    config = load_config(str(path))
    people = make_backend("simulated", backend_settings(config))
    done: set[str] = set()

    def annotate(n: int) -> None:
        todo = [t.pair_key for t in people.live_tasks() if t.pair_key not in done][:n]
        for key in todo:
            people.annotate_as(key, "ann-1", "a")
        done.update(todo)

    def tasks() -> dict[str, Task]:
        with session_scope(engine) as session:
            keys = dict(session.execute(select(Pair.id, Pair.key)).all())
            return {keys[t.pair_id]: t for t in session.scalars(select(Task))}

    run_sync(engine, config, log=lambda _: None)  # cold start: 5 random tasks
    annotate(5)
    run_sync(engine, config, log=lambda _: None)  # first model, 5 tasks of its choosing
    annotate(2)
    logs: list[dict] = []
    run_sync(engine, config, log=logs.append)  # +2 labels: retrain; 3 tasks of the old model are stale
    refresh = next(s for s in logs if s["step"] == "refresh")
    assert refresh["stale"] == 3 and refresh["kept"] + refresh["withdrawn"] == 3
    assert refresh["withdrawn"] >= 1, "this seed's ranking drops at least one stale task"
    with session_scope(engine) as session:
        newest = session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())).first().id
    now = tasks()
    live = {t.pair_key for t in people.live_tasks()}
    withdrawn = {k for k, t in now.items() if t.status == "withdrawn"}
    assert len(withdrawn) == refresh["withdrawn"] and not withdrawn & live
    pending = {k: t for k, t in now.items() if t.status == "pending"}
    assert len(pending) == 5 and set(pending) <= live, "the queue was refilled with the new model's picks"
    assert {t.model_version_id for t in pending.values()} == {newest}, "kept tasks now stand on the new model"
    assert not withdrawn & done, "annotated pairs are never withdrawn"

    # a stale task deleted at the backend by hand (or by a run that died before the store caught
    # up) is recorded as withdrawn, not left pending forever
    annotate(2)
    stale_now = [k for k, t in tasks().items() if t.status == "pending" and k not in done]
    people.withdraw_tasks(stale_now[:1])
    logs = []
    run_sync(engine, config, log=logs.append)
    refresh = next(s for s in logs if s["step"] == "refresh")
    assert refresh["vanished"] == 1 and tasks()[stale_now[0]].status == "withdrawn"
    withdrawn.add(stale_now[0])

    # a bigger queue takes every pair left in the pool, the withdrawn ones included
    bigger = dataclasses.replace(config, acquisition=dataclasses.replace(config.acquisition, queue_size=40))
    run_sync(engine, bigger, log=lambda _: None)
    again = tasks()
    assert all(again[k].status == "pending" and again[k].external_id for k in withdrawn)
    assert withdrawn <= {t.pair_key for t in people.live_tasks()}, "a withdrawn pair came back as a live task"
    with session_scope(engine) as session:
        assert session.scalar(select(func.count(Task.id))) == len(again) == 30, "one task row per pair"


def test_milestone_audit_is_stored_with_the_version_and_logged(sqlite_engine: Engine, tmp_path: Path) -> None:
    from prefloop.model.probes import probe_names
    from prefloop.store.versions import model_audit

    fill(sqlite_engine)
    path = write_config(tmp_path)
    metrics = tmp_path / "metrics.json"
    text = path.read_text().replace("min_labels = 10", "min_labels = 10\naudit_pairs = 6")
    path.write_text(text + f'metrics_path = "{metrics}"\n')
    config = load_config(str(path))
    logs: list[dict] = []
    run_sync(sqlite_engine, config, log=logs.append)  # cold start: no model, so no audit
    assert "audit" not in [s["step"] for s in logs]
    logs.clear()
    run_sync(sqlite_engine, config, dry_run=True, log=logs.append)  # says the audit the real run will do
    assert [s["step"] for s in logs] == ["connect", "pull", "train", "audit", "push"]
    assert logs[3]["dry_run"] is True and logs[3]["would_audit"] == 6
    logs.clear()
    run_sync(sqlite_engine, config, log=logs.append)  # 10 labels: the first model, then its audit
    assert [s["step"] for s in logs] == ["connect", "pull", "train", "audit", "score", "push"]
    logged = next(s for s in logs if s["step"] == "audit")
    with session_scope(sqlite_engine) as session:
        model = session.scalars(select(ModelVersion)).one()
        stored = model_audit(session, model.name)
    assert stored is not None and stored["model"] == model.name == logged["model"]
    assert stored["n_pairs"] == logged["pairs"] == 6, "six of the ten labelled pairs"
    assert [p["name"] for p in stored["probes"]] == probe_names()
    assert logged["shifts"] == {p["name"]: p["mean_shift"] for p in stored["probes"]}
    assert logged["flip_rates"] == {p["name"]: p["flip_rate"] for p in stored["probes"]}
    written = json.loads(metrics.read_text())
    assert written["audit"]["model"] == model.name and written["audit"]["shifts"] == logged["shifts"]
    assert "summary" in written, "the training metrics stay beside the audit"
