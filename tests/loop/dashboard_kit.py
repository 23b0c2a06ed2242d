"""A store filled by a short simulated loop, through the CLI a user runs, for the dashboard's tests and for
``docs/make_screenshots.py``: three simulated annotators (one careless, one whose name is HTML), pairs whose
texts hold HTML, three sync cycles (two models, each audited by sync on ``AUDIT_PAIRS`` labelled pairs and the
audit stored with it), held-out labelled pairs scored by ``score --all``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefloop.config.render import toml_value
from prefloop.loop.demo import generated_records, write_oracle
from prefloop.types import PairRecord
from tests.clirun import clean_env, run

#: texts that must reach the page as text: run as HTML, they would set ``window.__pwned`` or fetch off-host
#: (the queue shows the first 100 characters of a text: SCRIPT_TAG and IMG_TAG fall within them)
SCRIPT_TAG = '<script>window.__pwned = "response"</script>'
IMG_TAG = '<img src="http://203.0.113.9/p.png"'
HOSTILE_RESPONSE = SCRIPT_TAG + '<img src="http://203.0.113.9/x.png">'
HOSTILE_PROMPT = IMG_TAG + " onerror=\"window.__pwned = 'prompt'\">"
HOSTILE_ANNOTATOR = "<b onmouseover=\"window.__pwned='annotator'\">ann-3</b>"
FAST_MODEL = {"mode": "heads", "k": 3, "max_length": 64, "head_epochs": 30, "head_patience": 5}
AUDIT_PAIRS = 8  # [milestone] audit_pairs: sync audits each new model on this many labelled pairs


@dataclass
class Loop:
    """The filled store's folder and what ``status --json`` / ``annotators --json`` say about it."""

    folder: Path
    status: dict[str, Any]
    annotators: dict[str, Any]


def _hostile(records: list[PairRecord]) -> list[PairRecord]:
    """Every pool pair gets HTML in its texts (so whatever the queue shows next carries some)."""
    return [
        PairRecord(
            prompt=f"{r.prompt} {HOSTILE_PROMPT}",
            response_a=f"{r.response_a} {HOSTILE_RESPONSE}",
            response_b=r.response_b,
            label=r.label,
        )
        for r in records
    ]


def _jsonl(records: list[PairRecord], path: Path) -> Path:
    with path.open("w") as handle:
        for r in records:
            row = {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b}
            if r.label is not None:
                row["label"] = r.label.value
            handle.write(json.dumps(row) + "\n")
    return path


def write_loop_config(folder: Path, oracle: Path) -> Path:
    annotators = [{"id": "ann-1"}, {"id": "ann-2", "accuracy": 0.85}, {"id": HOSTILE_ANNOTATOR, "accuracy": 0.6}]
    extra = {"oracle_path": str(oracle), "annotators": annotators, "annotators_per_pair": 2, "seed": 3}
    text = f"""
db = {toml_value(str(folder / "prefloop.db"))}
artifacts_dir = {toml_value(str(folder / "artifacts"))}
[backend]
name = "simulated"
project = "dashboard"
url = {toml_value(str(folder / "sim"))}
[backend.extra]
{chr(10).join(f"{k} = {toml_value(v)}" for k, v in extra.items())}
[acquisition]
strategy = "bald"
queue_size = 6
[milestone]
every = 10
min_labels = 10
audit_pairs = {AUDIT_PAIRS}
[model]
{chr(10).join(f"{k} = {toml_value(v)}" for k, v in FAST_MODEL.items())}
"""
    path = folder / "prefloop.toml"
    path.write_text(text)
    return path


def fill_loop(folder: Path, cycles: int = 4) -> Loop:
    """Ingest 48 pool pairs and 20 labelled held-out pairs, run ``cycles`` syncs, score the held-out pairs with
    every model version."""
    folder.mkdir(parents=True, exist_ok=True)
    pool = _hostile(generated_records(48, seed=1))
    held = generated_records(20, seed=2)
    oracle = write_oracle(pool, folder / "oracle.jsonl")
    write_loop_config(folder, oracle)
    unlabeled = [PairRecord(r.prompt, r.response_a, r.response_b) for r in pool]
    run(folder, "init")
    run(folder, "ingest", str(_jsonl(unlabeled, folder / "pool.jsonl")))
    run(folder, "ingest", str(_jsonl(held, folder / "held.jsonl")), "--split", "test")
    for _ in range(cycles):
        proc = run(folder, "sync", check=False)
        assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    status = json.loads(run(folder, "status", "--json").stdout)
    for model in status["models"]:  # each version's predictions on the held-out pairs: the learning curve
        run(folder, "score", "--all", "--model", model["name"])
    annotators = json.loads(run(folder, "annotators", "--json").stdout)
    return Loop(folder, status, annotators)


_ADDRESS = re.compile(r"dashboard at (http://\S+/)")


class DashboardProcess:
    """``prefloop dashboard --port 0`` as a real child process; ``url`` once it listens."""

    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefloop.cli", "dashboard", "--port", "0", *args],
            cwd=folder,
            env=clean_env(**(env or {})),
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        said = []
        for line in self.proc.stderr:  # blocks until the address is printed, or the process ends
            said.append(line)
            match = _ADDRESS.search(line)
            if match:
                self.url = match.group(1)
                return
        self.proc.wait()
        raise AssertionError(f"prefloop dashboard exited {self.proc.returncode}:\n{''.join(said)}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("prefloop dashboard did not stop within 30 s of SIGTERM") from None
