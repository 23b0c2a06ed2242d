"""`prefloop sync` as cron runs it: every failure ends with a JSON line, signals exit 130/143 with a
consistent store, --dry-run predicts the real run and writes nothing, progress shows on a terminal."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from prefloop.loop.demo import generated_records, write_oracle
from tests.clirun import clean_env, prefloop

FAST_MODEL = {"mode": "heads", "k": 2, "max_length": 48, "head_epochs": 20, "head_patience": 5}


def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return prefloop(cwd, *args, env=clean_env(**env))


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def setup_loop(tmp_path: Path, *, min_labels: int = 10, extra: str = "", strategy: str = "diverse:bald") -> None:
    """A store with 60 unlabeled pool pairs and a simulated backend whose annotators answer at once."""
    records = generated_records(60)
    (tmp_path / "pool.jsonl").write_text(
        "".join(
            json.dumps({"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b}) + "\n"
            for r in records
        )
    )
    write_oracle(records, tmp_path / "oracle.jsonl")
    model = "\n".join(f"{k} = {json.dumps(v)}" for k, v in FAST_MODEL.items())
    (tmp_path / "prefloop.toml").write_text(f"""
artifacts_dir = "artifacts"
[backend]
name = "simulated"
project = "cron"
[backend.extra]
oracle_path = "oracle.jsonl"
{extra}
[acquisition]
strategy = "{strategy}"
queue_size = 10
max_per_prompt = 1
[milestone]
every = 10
min_labels = {min_labels}
[model]
{model}
""")
    assert cli(tmp_path, "init").returncode == 0
    assert cli(tmp_path, "ingest", "pool.jsonl").returncode == 0


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the hash of its content."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def store_counts(tmp_path: Path) -> dict[str, int]:
    return json.loads(cli(tmp_path, "stats", "--json").stdout)


def test_unexpected_errors_end_with_a_json_line_and_the_traceback_goes_to_the_log(tmp_path: Path) -> None:
    setup_loop(tmp_path, extra='noise_rate = "lots"')
    proc = cli(tmp_path, "sync")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = json_lines(proc.stdout)[-1]
    assert last["step"] == "error" and last["type"] == "ValueError" and "lots" in last["message"]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "Traceback" in Path(tmp_path / last["traceback"]).read_text()
    debug = cli(tmp_path, "sync", "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr, "--debug shows it"
    assert json_lines(debug.stdout)[-1]["type"] == "ValueError"


def test_a_missing_oracle_file_is_a_config_error_line(tmp_path: Path) -> None:
    setup_loop(tmp_path)
    (tmp_path / "oracle.jsonl").unlink()
    proc = cli(tmp_path, "sync")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = json_lines(proc.stdout)[-1]
    assert last["type"] == "ConfigError" and "oracle.jsonl" in last["message"] and "Traceback" not in proc.stderr


def _stop_at(tmp_path: Path, point: str, signum: int) -> subprocess.CompletedProcess[str]:
    """Run a sync, wait until it pauses at ``point``, send ``signum``, and return how it ended."""
    marker = tmp_path / f"paused-{point.replace(':', '-')}"
    env = clean_env(PREFLOOP_PAUSE_AT=point, PREFLOOP_PAUSE_FILE=str(marker))
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefloop.cli", "sync"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate()
    os.kill(proc.pid, signum)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow  # signals into real sync processes at each checkpoint (~21 s loaded)
def test_sigterm_and_sigint_exit_143_and_130_with_a_json_line_and_a_consistent_store(tmp_path: Path) -> None:
    setup_loop(tmp_path, min_labels=1000)  # no training: this is about the store
    term = _stop_at(tmp_path, "push:planned", signal.SIGTERM)
    assert term.returncode == 143, term.stdout + term.stderr
    last = json_lines(term.stdout)[-1]
    assert last == {**last, "step": "error", "type": "Interrupted", "kind": "interrupted", "exit_code": 143}
    assert "SIGTERM" in last["message"] and "Traceback" not in term.stderr
    resumed = cli(tmp_path, "sync")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    connect = json_lines(resumed.stdout)[0]
    assert connect["step"] == "connect" and connect["resumed_push"] == 10, "the planned tasks were kept and pushed"
    counts = store_counts(tmp_path)  # that run also pulled the 10 answers and pushed 10 more tasks
    assert counts["labels"] == 10 and sum(counts["tasks_by_status"].values()) == 20, "no task twice"

    intr = _stop_at(tmp_path, "pull:fetched", signal.SIGINT)  # the simulator answered; nothing stored yet
    assert intr.returncode == 130, intr.stdout + intr.stderr
    last = json_lines(intr.stdout)[-1]
    assert last["type"] == "Interrupted" and last["exit_code"] == 130 and "SIGINT" in last["message"]
    assert "Aborted" not in intr.stderr and "Traceback" not in intr.stderr
    assert store_counts(tmp_path) == counts, "labels and cursor commit together, or not at all"
    again = cli(tmp_path, "sync")
    pull = next(line for line in json_lines(again.stdout) if line["step"] == "pull")
    assert pull["new"] == 10 and store_counts(tmp_path)["labels"] == 20, "the interrupted pull is redone once"


def _run_on_a_terminal(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (as a person at a shell) and stdout on a pipe (as a log)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefloop.cli", *args],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=600)
    reader.join(timeout=10)
    os.close(leader)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_dry_run_predicts_the_real_run_and_writes_nothing_and_progress_shows_on_a_terminal(tmp_path: Path) -> None:
    setup_loop(tmp_path)
    first = cli(tmp_path, "sync")  # cold start: 10 random tasks; the simulator answers them on the next pull
    assert first.returncode == 0 and json_lines(first.stdout)[-1]["pushed"] == 10
    before = snapshot(tmp_path)

    dry = cli(tmp_path, "sync", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    steps = {line["step"]: line for line in json_lines(dry.stdout)}
    assert list(steps) == ["connect", "pull", "train", "push"] and all(s["dry_run"] for s in steps.values())
    assert steps["pull"]["new"] == 10, "the labels waiting at the backend"
    assert steps["train"]["would_train"] is True and steps["train"]["labels_since_model"] == 10
    assert steps["push"]["pending"] == 0 and steps["push"]["would_push"] == 10
    assert snapshot(tmp_path) == before, "no store write, lock file, simulator state or artifact"

    code, out, terminal = _run_on_a_terminal(tmp_path, "sync")
    assert code == 0, out + terminal
    real = {line["step"]: line for line in json_lines(out)}  # stdout stays pure JSON lines
    assert real["pull"]["new"] == 10 and real["train"]["model"].startswith("rm-")
    assert real["push"]["pushed"] == steps["push"]["would_push"], "the dry run said what the real run did"
    for words in (
        "pulling labels from simulated",
        "training at the milestone",
        "scoring the pool with rm-",
        "embedding",
        "pushing 10 tasks to simulated",
    ):
        assert words in terminal, f"no progress for {words!r}:\n{terminal}"
    quiet = cli(tmp_path, "sync", "--dry-run")
    assert "pulling" not in quiet.stderr, "no progress when stderr is not a terminal"
