"""Export: TRL chosen/rejected with margins, ties apart, majority aggregation, raw rows, formats."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import Engine

from prefloop.data.export import export_labels
from prefloop.store.db import session_scope
from prefloop.store.pairs import add_pairs
from prefloop.store.queries import aggregate_choice
from prefloop.types import Choice, PairRecord


def _store(engine: Engine) -> None:
    records = [
        PairRecord("p1", "good", "bad", Choice.A, strength=2.0, annotator="u1"),
        PairRecord("p1", "good", "bad", Choice.A, strength=4.0, annotator="u2"),
        PairRecord("p1", "good", "bad", Choice.B, annotator="u3"),
        PairRecord("p2", "left", "right", Choice.TIE, annotator="u1"),
        PairRecord("p3", "yes", "no", Choice.A, annotator="u1"),
        PairRecord("p3", "yes", "no", Choice.B, annotator="u2"),
    ]
    with session_scope(engine) as session:
        add_pairs(session, records, source="t")


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_aggregate_rule() -> None:
    assert aggregate_choice(["a", "a", "b"]) == "a"
    assert aggregate_choice(["a", "b"]) is None
    assert aggregate_choice(["tie", "tie", "a"]) == "tie"
    assert aggregate_choice(["tie", "a"]) is None
    assert aggregate_choice(["skip"]) is None


def test_trl_majority_with_margin_and_separate_ties(sqlite_engine: Engine, tmp_path: Path) -> None:
    _store(sqlite_engine)
    report = export_labels(sqlite_engine, str(tmp_path / "prefs.jsonl"), margin=True, ties="separate")
    rows = _read(tmp_path / "prefs.jsonl")
    assert rows == [{"prompt": "p1", "chosen": "good", "rejected": "bad", "margin": 3.0, "n_labels": 3}]
    side = _read(tmp_path / "prefs.ties.jsonl")
    assert sorted(r["reason"] for r in side) == ["disagreement", "tie"]
    assert (report.ties, report.disagreements) == (1, 1)


def test_per_annotator_and_raw_rows(engine: Engine, tmp_path: Path) -> None:
    _store(engine)
    export_labels(engine, str(tmp_path / "each.jsonl"), aggregate=False)
    each = _read(tmp_path / "each.jsonl")
    assert len(each) == 5 and {r["annotator"] for r in each} == {"u1", "u2", "u3"}
    export_labels(engine, str(tmp_path / "raw.parquet"), fmt="parquet", kind="raw")
    table = pq.read_table(tmp_path / "raw.parquet").to_pylist()
    assert len(table) == 6 and {"pair_key", "annotator", "choice", "backend"} <= set(table[0])


def test_datasets_folder(sqlite_engine: Engine, tmp_path: Path) -> None:
    import datasets

    _store(sqlite_engine)
    export_labels(sqlite_engine, str(tmp_path / "ds"), fmt="hf")
    loaded = datasets.load_from_disk(str(tmp_path / "ds"))
    assert loaded.num_rows == 1 and loaded[0]["chosen"] == "good"
