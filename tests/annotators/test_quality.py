"""Simulated annotators of known accuracy through the simulator, the store and the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from prefloop.annotators import dawid_skene, label_matrix, majority_vote
from prefloop.backends import BackendSettings
from prefloop.backends.simulated import SimulatedBackend
from prefloop.loop.annotator_quality import annotators_report
from prefloop.store.db import session_scope
from prefloop.store.labels import record_pull
from prefloop.store.pairs import add_pairs
from prefloop.store.tasks import record_tasks
from prefloop.types import PairRecord, TaskRequest

ANNOTATORS = [
    {"id": "ace", "accuracy": 0.95},
    {"id": "good", "accuracy": 0.85},
    {"id": "fair", "accuracy": 0.75},
    {"id": "spam", "accuracy": 0.5},
    {"id": "lazy", "clicks": "first"},
]


def _run(engine: Engine, folder: Path, n: int = 500, seed: int = 3) -> dict[int, str]:
    """Push n pairs to the simulator (4 of 5 annotators each), pull, store; return pair id → truth."""
    rng = np.random.default_rng(7)
    records = [PairRecord(f"question {i}", f"first answer {i}", f"second answer {i}") for i in range(n)]
    truth = {r.canonical().key: str(rng.choice(["a", "b", "tie"], p=[0.45, 0.45, 0.1])) for r in records}
    backend = SimulatedBackend(
        BackendSettings(
            project="q",
            url=str(folder),
            extra={"oracle": truth, "annotators": ANNOTATORS, "annotators_per_pair": 4, "seed": seed},
        )
    )
    with session_scope(engine) as session:
        add_pairs(session, records, source="sim")
    requests = [
        TaskRequest(pair_key=c.key, prompt=r.prompt, response_a=c.response_a, response_b=c.response_b)
        for r in records
        for c in [r.canonical()]
    ]
    pushed = backend.push_tasks(requests)
    with session_scope(engine) as session:
        record_tasks(session, backend.name, pushed)
    result = backend.pull_labels()
    with session_scope(engine) as session:
        record_pull(session, backend.name, "q", result, labels_per_task=3)
    from prefloop.store.pairs import pairs_by_keys

    with session_scope(engine) as session:
        ids = {k: p.id for k, p in pairs_by_keys(session, truth).items()}
    return {ids[k]: v for k, v in truth.items()}


def test_reliability_order_flags_and_ds_beats_majority(engine: Engine, tmp_path: Path) -> None:
    truth = _run(engine, tmp_path / "sim")
    report = annotators_report(engine, out=str(tmp_path / "out"))
    rows = {r["annotator"]: r for r in report["annotators"]}
    assert set(rows) == {"ace", "good", "fair", "spam", "lazy"}
    genuine = [rows[n]["reliability"] for n in ("ace", "good", "fair")]
    assert genuine == sorted(genuine, reverse=True)
    assert min(genuine) > max(rows["spam"]["reliability"], rows["lazy"]["reliability"])
    assert rows["spam"]["flagged"] and "spammer" in rows["spam"]["reasons"]
    assert rows["lazy"]["flagged"] and "position-biased" in rows["lazy"]["reasons"]
    assert rows["lazy"]["position_bias"]["first_shown_share"] == 1.0
    assert rows["spam"]["position_bias"]["p_value"] > 0.001  # random clicks are not a side preference
    assert not any(rows[n]["flagged"] for n in ("ace", "good", "fair"))
    assert (tmp_path / "out" / "kappa_heatmap.png").stat().st_size > 1000
    assert set(report) >= {"annotators", "krippendorff_alpha", "fleiss_kappa"}
    assert set(rows["ace"]) >= {
        "annotator",
        "labels",
        "agreement_with_consensus",
        "reliability",
        "tie_rate",
        "position_bias",
        "flagged",
        "reasons",
    }

    # aggregation accuracy against the oracle
    from prefloop.loop.annotator_quality import annotations_from_rows
    from prefloop.store.annotations import annotation_rows

    with session_scope(engine) as session:
        matrix = label_matrix(annotations_from_rows(annotation_rows(session)))
    want = np.array([["a", "b", "tie"].index(truth[p]) for p in matrix.pair_ids])
    ds_acc = (dawid_skene(matrix.labels).hard_labels() == want).mean()
    mv_acc = (majority_vote(matrix.labels) == want).mean()
    assert ds_acc >= mv_acc
    assert ds_acc > 0.8


def test_store_rows_carry_shown_order_and_time(engine: Engine) -> None:
    """Label Studio keeps lead_time in the raw annotation; Argilla only submission times (gaps)."""
    from datetime import UTC, datetime, timedelta

    from prefloop.store.annotations import annotation_rows
    from prefloop.types import AnnotatorRef, Choice, PulledLabel, PullResult, PushedTask

    records = [PairRecord(f"q{i}", f"one {i}", f"two {i}") for i in range(4)]
    keys = [r.canonical().key for r in records]
    with session_scope(engine) as session:
        add_pairs(session, records, source="t")
        record_tasks(session, "label_studio", [PushedTask(k, str(i), i % 2 == 1, "p") for i, k in enumerate(keys)])
        record_tasks(session, "argilla", [PushedTask(k, f"r{i}", False, "d") for i, k in enumerate(keys)])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ls = [
        PulledLabel(k, AnnotatorRef("7", "lena"), Choice.A, f"ls{i}", "1", raw={"lead_time": 10.0 + i})
        for i, k in enumerate(keys)
    ]
    ar = [
        PulledLabel(k, AnnotatorRef("u-1", "arno"), Choice.B, f"ar{i}", "1", created_at=start + timedelta(seconds=s))
        for i, (k, s) in enumerate(zip(keys, [0, 20, 50, 4000], strict=True))
    ]
    with session_scope(engine) as session:
        record_pull(session, "label_studio", "p", PullResult(ls, "c"))
        record_pull(session, "argilla", "d", PullResult(ar, "c"))
    with session_scope(engine) as session:
        rows = annotation_rows(session)
    by = {(r.backend, r.pair_id): r for r in rows}
    assert [r.swapped for r in rows if r.backend == "label_studio"] == [False, True, False, True]
    assert [r.lead_time for r in rows if r.backend == "label_studio"] == [10.0, 11.0, 12.0, 13.0]
    assert len(by) == 8
    report = annotators_report(engine)
    got = {r["annotator"]: r for r in report["annotators"]}
    assert got["lena"]["median_seconds"] == 11.5
    assert got["arno"]["median_seconds"] == 25.0  # gaps 20 and 30; the 3950 s gap is a break
    # lena always clicked canonical "a": shown first on the straight tasks, second on the swapped ones
    assert got["lena"]["position_bias"]["first_shown_share"] == 0.5
    assert got["arno"]["position_bias"]["first_shown_share"] == 0.0
