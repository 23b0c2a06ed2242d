"""`prefloop train --debias length` and `[model] debias` as a user runs them (the real CLI, SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clirun import run


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A working directory with 60 generated labelled pairs ingested and 15 held out in a file."""
    from prefloop.loop.demo import generated_records

    rows = [
        {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b, "label": r.label.value}
        for r in generated_records(75, seed=3)
    ]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:60]))
    (tmp_path / "heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[60:]))
    (tmp_path / "prefloop.toml").write_text("[model]\nk = 2\nmax_length = 64\n")
    run(tmp_path, "ingest", "train.jsonl")
    return tmp_path


def _saved_config(cwd: Path, name: str) -> dict[str, object]:
    return json.loads((cwd / "prefloop-artifacts" / "models" / name / "config.json").read_text())


@pytest.mark.slow  # trains a model
def test_train_debias_length_is_saved_and_eval_works(store: Path) -> None:
    args = ("train", "--mode", "heads", "--debias", "length", "--debias-method", "balanced")
    name = run(store, *args).stdout.strip()
    saved = _saved_config(store, name)
    assert saved["debias"] == "length" and saved["debias_method"] == "balanced"
    metrics = json.loads(run(store, "eval", "--model", name, "--data", "heldout.jsonl", "--json").stdout)
    assert metrics["n"] == 15 and metrics["accuracy"] is not None and metrics["length_corr"] is not None
    # the version record keeps the setting too (what `status` and lineage read)
    from sqlalchemy import create_engine, text

    with create_engine(f"sqlite:///{store / 'prefloop.db'}").connect() as conn:
        config = conn.execute(text("SELECT config FROM model_versions WHERE name = :n"), {"n": name}).scalar_one()
    assert json.loads(config)["debias"] == "length"


@pytest.mark.slow  # trains a model
def test_config_file_selects_debias_and_the_flag_overrides_it(store: Path) -> None:
    (store / "prefloop.toml").write_text('[model]\nk = 2\nmax_length = 64\ndebias = "length"\n')
    name = run(store, "train", "--mode", "heads").stdout.strip()
    saved = _saved_config(store, name)
    assert saved["debias"] == "length" and saved["debias_method"] == "project_balanced", "the default method"
    other = run(store, "train", "--mode", "heads", "--debias", "none").stdout.strip()
    assert _saved_config(store, other)["debias"] == "none"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('debias = "lenght"', "[model]: debias must be 'none' | 'length', got 'lenght'"),
        (
            'debias_method = "odn"',
            "debias_method must be 'project_balanced' | 'project' | 'odin' | 'conditioned' | 'balanced', got 'odn'",
        ),
        ('debias_metod = "odin"', "debias_metod (did you mean debias_method?)"),
        ("debias_weight = -1", "debias_weight must be at least 0"),
    ],
)
def test_a_bad_debias_setting_fails_at_config_load(tmp_path: Path, setting: str, message: str) -> None:
    (tmp_path / "prefloop.toml").write_text(f"[model]\n{setting}\n")
    proc = run(tmp_path, "train", "--mode", "heads", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefloop.toml"], "nothing written"


def test_a_bad_flag_value_is_refused_by_the_cli(tmp_path: Path) -> None:
    proc = run(tmp_path, "train", "--debias", "lenght", check=False)
    assert proc.returncode == 2
    assert "[model]: debias must be 'none' | 'length', got 'lenght' (from flag --debias)" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "refused before any work: no store"
