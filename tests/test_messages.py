"""Messages a user reads: each names what is wrong and what to do, with the right exit code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from prefloop.store.db import make_engine, session_scope
from prefloop.store.versions import record_model_version
from tests.clirun import prefloop


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with three labeled pairs (dimension 'overall') and one model version."""
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert prefloop(tmp_path, "init").returncode == 0
    assert prefloop(tmp_path, "ingest", "pairs.jsonl").returncode == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'prefloop.db'}")
    with session_scope(engine) as session:
        record_model_version(
            session,
            name="rm-0123abcd",
            parent_id=None,
            base_model="minilm",
            mode="heads",
            config={},
            artifact_path=str(tmp_path / "gone"),
            snapshot={"n_labels": 3},
            metrics={"val_loss": 0.6931471805599453, "train_loss": 0.12345678901234, "n_pairs": 3},
        )
    engine.dispose()
    return tmp_path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", ["score", "eval"])
def test_an_unknown_model_version_is_named(store: Path, command: str) -> None:
    proc = prefloop(store, command, "--model", "rm-nope")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no model version rm-nope" in proc.stderr and "run `prefloop train`" not in proc.stderr


def test_export_to_a_json_name_writes_json_lines(store: Path) -> None:
    proc = prefloop(store, "export", "prefs.json")
    assert proc.returncode == 0, proc.stderr
    assert (store / "prefs.json").is_file(), "a file, not a datasets folder named prefs.json"
    rows = [json.loads(line) for line in (store / "prefs.json").read_text().splitlines()]
    assert len(rows) == 3 and {"prompt", "chosen", "rejected"} <= set(rows[0])


def test_export_of_an_unknown_dimension_is_an_error_not_an_empty_file(store: Path) -> None:
    before = digest(store / "prefloop.db")
    proc = prefloop(store, "export", "harmless.jsonl", "--dimension", "nope")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no labels of dimension 'nope'" in proc.stderr and "its dimensions: overall" in proc.stderr
    assert not (store / "harmless.jsonl").exists() and digest(store / "prefloop.db") == before


def test_export_onto_an_existing_folder_is_a_clear_error(store: Path) -> None:
    (store / "out").mkdir()
    (store / "out" / "keep.txt").write_text("mine")
    for name in ("out", "out/"):
        proc = prefloop(store, "export", name)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "is an existing folder" in proc.stderr and "Traceback" not in proc.stderr
    assert [p.name for p in (store / "out").iterdir()] == ["keep.txt"]


def test_status_is_readable_text_with_rounded_numbers(store: Path) -> None:
    proc = prefloop(store, "status")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "{" not in text and "[" not in text, "no Python dicts or lists"
    assert "model       rm-0123abcd" in text and "val_loss 0.693" in text and "0.6931471805599453" not in text
    assert "agreement   no pair has several labels yet" in text
    data = json.loads(prefloop(store, "status", "--json").stdout)
    assert data["models"][0]["metrics"]["train_loss"] == 0.1235, "JSON keeps 4 decimals"
