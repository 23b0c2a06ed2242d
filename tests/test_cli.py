"""The CLI as a user runs it (tests/clirun.py: the click command in process, or a subprocess), real SQLite files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clirun import run


def test_init_ingest_stats_export_in_a_fresh_directory(tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}) + "\n" for i in range(5))
    )
    assert "schema revision" in run(tmp_path, "init").stdout
    assert (tmp_path / "prefloop.db").exists(), "the default store is prefloop.db in the working directory"
    first = run(tmp_path, "ingest", str(data)).stdout
    assert "5 new pairs, 5 new labels" in first, "a first ingest of distinct pairs has nothing to explain"
    again = run(tmp_path, "ingest", str(data)).stdout
    assert "0 new pairs (5 already stored)" in again and "nothing new" in again
    stats = json.loads(run(tmp_path, "stats", "--json").stdout)
    assert stats["pairs"] == 5 and stats["labels_by_choice"]["a"] + stats["labels_by_choice"]["b"] == 5
    run(tmp_path, "export", "out.jsonl")
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 5


def test_ingest_tells_pairs_repeated_in_the_file_from_pairs_already_stored(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i % 3}", "chosen": f"good {i % 3}", "rejected": f"bad {i % 3}"} for i in range(5)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run(tmp_path, "--db", str(tmp_path / "s.db"), "ingest", str(data)).stdout
    assert "3 new pairs (2 repeated in this source)" in out, out
    more = tmp_path / "more.jsonl"
    extra = {"prompt": "q9", "chosen": "x", "rejected": "y"}
    more.write_text("".join(json.dumps(r) + "\n" for r in [*rows[:2], extra]))
    out = run(tmp_path, "--db", str(tmp_path / "s.db"), "ingest", str(more)).stdout
    assert "1 new pairs (2 already stored)" in out, out
    report = json.loads(run(tmp_path, "--db", str(tmp_path / "s.db"), "ingest", str(data), "--json").stdout)
    assert (report["pairs_seen"], report["pairs_distinct"], report["pairs_added"]) == (5, 3, 0)


def test_bad_file_exits_nonzero_with_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "response_a": "x", "response_b": "x"}\n')
    proc = run(tmp_path, "--db", str(tmp_path / "s.db"), "ingest", str(bad), check=False)
    assert proc.returncode == 2, "bad input is exit 2, like a bad setting"
    assert "bad.jsonl, line 1, field 'response_b'" in proc.stderr
    assert "--skip-invalid" in proc.stderr


def test_db_flag_and_env_select_the_store(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "store.db"
    run(tmp_path, "--db", str(other), "init")
    assert other.exists() and not (tmp_path / "prefloop.db").exists()


def test_readme_configuration_reference_is_current() -> None:
    from prefloop.config import config_reference

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert config_reference() in readme, "regenerate the README's configuration reference"


@pytest.mark.slow  # embeds every pair with MiniLM and trains heads each round (~12 s loaded)
def test_simulate_command_writes_curves(tmp_path: Path) -> None:
    from prefloop.loop.demo import generated_records

    data = tmp_path / "labeled.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b, "label": r.label.value}
            )
            + "\n"
            for r in generated_records(80)
        )
    )
    proc = run(
        tmp_path,
        "simulate",
        str(data),
        "--mode",
        "heads",  # the fast mode; the default is the loop's (adapted)
        "--strategy",
        "random",
        "--strategy",
        "bald",
        "--seeds",
        "0",
        "--seed-size",
        "10",
        "--batch",
        "10",
        "--rounds",
        "2",
        "--out",
        str(tmp_path / "sim"),
    )
    assert "random" in proc.stdout and "bald" in proc.stdout
    rows = (tmp_path / "sim" / "curves.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3, "a header and (seed model + 2 rounds) rows per strategy"
    assert (tmp_path / "sim" / "learning_curves.png").stat().st_size > 1000


@pytest.mark.slow  # trains, scores and evaluates a model through the CLI (~95 s loaded)
def test_train_score_eval_from_the_command_line(tmp_path: Path) -> None:
    from prefloop.loop.demo import generated_records

    records = generated_records(90, seed=3)
    rows = [
        {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b, "label": r.label.value}
        for r in records
    ]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:60]))
    (tmp_path / "pool.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "label"}) + "\n" for r in rows[60:75])
    )
    (tmp_path / "heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[75:]))
    (tmp_path / "prefloop.toml").write_text("[model]\nk = 3\nmax_length = 64\n")
    run(tmp_path, "ingest", "train.jsonl")
    run(tmp_path, "ingest", "pool.jsonl")
    first = run(tmp_path, "train").stdout.strip()
    assert first.startswith("rm-")
    assert run(tmp_path, "score").stdout.strip() == f"{first}: 15 pairs scored"
    assert run(tmp_path, "score").stdout.strip() == f"{first}: 0 pairs scored", "scoring is resumable"
    metrics = json.loads(run(tmp_path, "eval", "--data", "heldout.jsonl", "--out", "eval", "--json").stdout)
    assert {"accuracy", "log_loss", "ece", "n", "length_corr"} <= set(metrics) and metrics["n"] == 15
    assert metrics["accuracy"] > 0.7, "the generated data is learnable"
    assert (tmp_path / "eval" / "reliability.png").exists() and (tmp_path / "eval" / "reward_vs_length.png").exists()
    assert json.loads(run(tmp_path, "stats", "--json").stdout)["pairs"] == 75, "eval --data does not ingest"
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    assert status["current_model"] == first and status["labels_since_last_model"] == 0
    failed = run(tmp_path, "train", "--from", first, check=False)
    assert failed.returncode == 1 and "no labels since model" in failed.stderr
    other = run(tmp_path, "train", "--from", first, "--mode", "finetune", "-k", "1", check=False)
    assert other.returncode == 1 and f"--from {first}: that model was trained in" in other.stderr
    assert "mode with k=3" in other.stderr
    assert "Traceback" not in other.stderr and "ValueError" not in other.stderr
