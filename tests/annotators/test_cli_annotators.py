"""A per-annotator CSV, plain ``prefloop ingest``, then ``prefloop annotators`` and ``export --aggregate``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.clirun import run

KEYS = {
    "annotator",
    "labels",
    "agreement_with_consensus",
    "reliability",
    "tie_rate",
    "position_bias",
    "flagged",
    "reasons",
}


def _write_votes(path: Path, n: int = 150) -> dict[str, str]:
    """Two careful annotators (95 %) and three who click at random; returns prompt → preferred text."""
    rng = np.random.default_rng(11)
    truth: dict[str, str] = {}
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=["prompt", "response_a", "response_b", "label", "annotator"])
        out.writeheader()
        for i in range(n):
            prompt, a, b = f"question {i}", f"a careful answer {i}", f"a sloppy answer {i}"
            best = str(rng.choice(["a", "b"]))
            truth[prompt] = a if best == "a" else b
            for who in ("careful-1", "careful-2", "random-1", "random-2", "random-3"):
                if who.startswith("careful"):
                    label = best if rng.random() < 0.95 else ("b" if best == "a" else "a")
                else:
                    label = str(rng.choice(["a", "b"]))
                out.writerow({"prompt": prompt, "response_a": a, "response_b": b, "label": label, "annotator": who})
    return truth


def _accuracy(path: Path, truth: dict[str, str]) -> tuple[float, int]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return sum(r["chosen"] == truth[r["prompt"]] for r in rows) / len(truth), len(rows)


@pytest.mark.slow  # five CLI runs with Dawid-Skene over 750 labels (~27 s loaded)
def test_csv_feeds_annotators_and_dawid_skene_export(tmp_path: Path) -> None:
    truth = _write_votes(tmp_path / "votes.csv")
    assert "750 new labels" in run(tmp_path, "ingest", "votes.csv").stdout
    report = json.loads(run(tmp_path, "annotators", "--json", "--out", "quality").stdout)
    assert {"annotators", "krippendorff_alpha", "fleiss_kappa"} <= set(report)
    assert all(set(row) >= KEYS for row in report["annotators"])
    rows = {r["annotator"]: r for r in report["annotators"]}
    assert set(rows) == {"careful-1", "careful-2", "random-1", "random-2", "random-3"}
    assert min(rows["careful-1"]["reliability"], rows["careful-2"]["reliability"]) > max(
        rows[f"random-{i}"]["reliability"] for i in (1, 2, 3)
    )
    assert all(rows[f"random-{i}"]["flagged"] for i in (1, 2, 3))
    assert not rows["careful-1"]["flagged"] and not rows["careful-2"]["flagged"]
    assert rows["careful-1"]["position_bias"] is None  # a file does not say which side was shown first
    assert rows["careful-1"]["labels"] == 150 and rows["careful-1"]["tie_rate"] == 0.0
    assert set(rows["careful-1"]["kappa"]) == {"careful-2", "random-1", "random-2", "random-3"}
    assert (tmp_path / "quality" / "kappa_heatmap.png").exists()
    assert "Fleiss" in run(tmp_path, "annotators").stdout

    run(tmp_path, "export", "ds.jsonl", "--aggregate", "dawid-skene")
    run(tmp_path, "export", "mv.jsonl", "--aggregate", "majority")
    ds_acc, ds_rows = _accuracy(tmp_path / "ds.jsonl", truth)
    mv_acc, _ = _accuracy(tmp_path / "mv.jsonl", truth)
    assert ds_rows == 150  # Dawid–Skene always has a verdict; two-class votes of five never split
    assert ds_acc > mv_acc and ds_acc >= 0.9
    first = json.loads((tmp_path / "ds.jsonl").read_text().splitlines()[0])
    assert {"prompt", "chosen", "rejected", "confidence", "n_labels"} <= set(first)
    run(tmp_path, "export", "none.jsonl", "--aggregate", "none")
    assert len((tmp_path / "none.jsonl").read_text().splitlines()) == 750


def test_annotators_on_an_empty_store(tmp_path: Path) -> None:
    run(tmp_path, "init")
    report = json.loads(run(tmp_path, "annotators", "--json", "--out", "quality").stdout)
    assert report["annotators"] == [] and report["krippendorff_alpha"] is None and report["fleiss_kappa"] is None
    assert report["heatmap"] is None and (tmp_path / "quality" / "annotators.json").exists()


def test_the_table_shows_whole_names_and_dashes_for_undefined_numbers(tmp_path: Path) -> None:
    """At 80 columns (a pipe) a long annotator name is not cut, and a statistic that is undefined
    (one label, no timing) reads '-' rather than 'None'."""
    long_name = "annotator-with-a-rather-long-email-address@annotation-vendor.example.org"
    rows = [
        {"prompt": f"q{i}", "response_a": f"a{i}", "response_b": f"b{i}", "label": "a", "annotator": who}
        for i in range(3)
        for who in ("ann", long_name)
    ] + [{"prompt": "q9", "response_a": "a9", "response_b": "b9", "label": "b", "annotator": "solo"}]
    with (tmp_path / "votes.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=["prompt", "response_a", "response_b", "label", "annotator"])
        out.writeheader()
        out.writerows(rows)
    run(tmp_path, "ingest", "votes.csv")
    table = run(tmp_path, "annotators").stdout
    assert long_name in table
    assert "None" not in table and "-" in table
