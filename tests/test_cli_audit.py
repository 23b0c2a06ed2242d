"""`prefloop audit` as a user runs it: a real store, a real trained model, real files, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefloop.model.probes import probe_names
from tests.clirun import run

pytestmark = pytest.mark.slow  # trains a model: outside the fast local loop


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store with a heads-mode model (k = 2) trained on 40 generated pairs, and 12 unlabelled pairs."""
    from prefloop.loop.demo import generated_records

    folder = tmp_path_factory.mktemp("audit")
    rows = []
    for r in generated_records(52, seed=5):
        assert r.label is not None, "generated pairs carry their label"
        rows.append(
            {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b, "label": r.label.value}
        )
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:40]))
    unlabelled = [{k: v for k, v in r.items() if k != "label"} for r in rows[40:]]
    (folder / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in unlabelled))
    run(folder, "init")
    run(folder, "ingest", "train.jsonl")
    name = run(folder, "train", "--mode", "heads", "-k", "2", "--max-length", "64").stdout.strip().splitlines()[-1]
    assert name.startswith("rm-")
    return folder, name


def test_audit_json_report_and_plot(trained: tuple[Path, str]) -> None:
    folder, name = trained
    proc = run(folder, "audit", "--data", "pairs.jsonl", "--json", "--out", "audit", "--resamples", "200")
    report = json.loads(proc.stdout)  # exactly one JSON object on stdout
    assert report["model"] == name and report["n_pairs"] == 12
    assert [p["name"] for p in report["probes"]] == probe_names()
    for probe in report["probes"]:
        assert {"name", "mean_shift", "flip_rate", "ci", "flip_ci"} <= set(probe)
        low, high = probe["ci"]
        assert low <= probe["mean_shift"] <= high
        assert 0.0 <= probe["flip_rate"] <= 1.0
    assert {"r", "ci", "n"} <= set(report["length_correlation"]) and report["length_correlation"]["n"] == 24
    assert {c["feature"] for c in report["format_correlations"]} == {"newlines", "list_markers", "markdown"}
    assert (folder / "audit" / "audit.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (folder / "audit" / "audit.md").read_text()
    assert f"# Reward-hacking audit of {name}" in markdown and "| verbose |" in markdown
    assert json.loads((folder / "audit" / "audit.json").read_text())["probes"] == report["probes"]


def test_audit_human_table_and_model_folder_without_a_store(trained: tuple[Path, str], tmp_path: Path) -> None:
    folder, name = trained
    table = run(folder, "audit", "--data", "pairs.jsonl", "--model", name, "--resamples", "50").stdout
    assert all(probe in table for probe in probe_names()) and "reward–length r" in table
    saved = folder / "prefloop-artifacts" / "models" / name
    elsewhere = run(tmp_path, "audit", "--model", str(saved), "--data", str(folder / "pairs.jsonl"), "--json")
    assert json.loads(elsewhere.stdout)["model"] == name
    assert not (tmp_path / "prefloop.db").exists(), "a model folder needs no store"


def test_audit_errors_say_what_to_do(trained: tuple[Path, str]) -> None:
    folder, _name = trained
    missing = run(folder, "audit", "--data", "nope.jsonl", check=False)
    assert missing.returncode == 2 and "nope.jsonl: file not found" in missing.stderr
    unknown = run(folder, "audit", "--model", "rm-nope", "--data", "pairs.jsonl", check=False)
    assert unknown.returncode == 2 and "no model version rm-nope" in unknown.stderr
    assert "prefloop status" in unknown.stderr
    (folder / "bad.jsonl").write_text('{"prompt": "p", "response_a": "x", "response_b": "y"}\n{"prompt": "p"}\n')
    bad = run(folder, "audit", "--data", "bad.jsonl", check=False)
    assert bad.returncode == 2 and "bad.jsonl, line 2" in bad.stderr
    for proc in (missing, unknown, bad):
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_audit_reads_each_pair_once_and_samples_with_a_seed(tmp_path: Path) -> None:
    from prefloop.loop.audit import audit_pairs

    rows = [{"prompt": f"q{i}", "response_a": f"a{i}", "response_b": f"b{i}"} for i in range(6)]
    rows.append({**rows[0], "label": "a"})  # the same pair again, labelled: still one pair
    rows.append({"prompt": "q1", "response_a": "b1", "response_b": "a1"})  # swapped: still one pair
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = audit_pairs(str(tmp_path / "pairs.jsonl"))
    assert pairs == [(f"q{i}", f"a{i}", f"b{i}") for i in range(6)]
    sample = audit_pairs(str(tmp_path / "pairs.jsonl"), max_pairs=3, seed=4)
    assert len(sample) == 3 and sample == audit_pairs(str(tmp_path / "pairs.jsonl"), max_pairs=3, seed=4)
    assert sample == sorted(sample, key=pairs.index), "a sample keeps the file's order"


def test_audit_without_any_model_says_train_first(tmp_path: Path) -> None:
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"prompt": "q", "response_a": "x", "response_b": "y"}) + "\n")
    run(tmp_path, "init")
    proc = run(tmp_path, "audit", "--data", "pairs.jsonl", check=False)
    assert proc.returncode == 1 and "no model to audit: run `prefloop train` first" in proc.stderr
    no_store = run(tmp_path, "--db", str(tmp_path / "none.db"), "audit", "--data", "pairs.jsonl", check=False)
    assert no_store.returncode == 2 and "prefloop init" in no_store.stderr
    assert not (tmp_path / "none.db").exists(), "audit never creates a store"


def test_eval_and_audit_read_a_file_in_its_own_layout(trained: tuple[Path, str]) -> None:
    """--map / --label-map / --format work on eval --data and audit --data as they do on ingest."""
    folder, name = trained
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()[:10]]
    lines = ["question,first,second,winner"]
    lines += [
        ",".join(json.dumps(v) for v in (r["prompt"], r["response_a"], r["response_b"], 1 if r["label"] == "a" else 0))
        for r in rows
    ]
    (folder / "votes.csv").write_text("\n".join(lines) + "\n")
    layout = ["--map", "prompt=question", "--map", "response_a=first", "--map", "response_b=second"]
    labels = ["--map", "label=winner", "--label-map", "1=a,0=b"]
    metrics = json.loads(run(folder, "eval", "--data", "votes.csv", *layout, *labels, "--json").stdout)
    assert metrics["model"] == name and metrics["n"] == 10
    unmapped = run(folder, "eval", "--data", "votes.csv", "--json", check=False)
    assert unmapped.returncode == 2 and "votes.csv" in unmapped.stderr and "--map" in unmapped.stderr
    assert "--skip-invalid" not in unmapped.stderr and "nothing was written" not in unmapped.stderr
    unread = run(folder, "audit", "--data", "votes.csv", *layout, "--json", check=False)
    assert unread.returncode == 2 and "label-like column(s) winner" in unread.stderr and "--map" in unread.stderr
    audit = run(folder, "audit", "--data", "votes.csv", *layout, *labels, "--json", "--resamples", "50")
    assert json.loads(audit.stdout)["n_pairs"] == 10
    stray = run(folder, "eval", "--map", "label=winner", check=False)
    assert stray.returncode == 2 and "say how to read --data" in stray.stderr
