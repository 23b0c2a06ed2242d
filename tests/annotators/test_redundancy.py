"""Adaptive redundancy: the policy by hand, the simulator reopening tasks, and the loop asking for more."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from prefloop.annotators.redundancy import RedundancyPolicy, labels_wanted
from prefloop.backends import BackendError, BackendSettings
from prefloop.backends.simulated import SimulatedBackend
from prefloop.config import load_config
from prefloop.loop.demo import generated_records, write_oracle
from prefloop.loop.sync import run_sync
from prefloop.store.db import session_scope
from prefloop.store.models import Label, Task
from prefloop.store.pairs import add_pairs
from prefloop.types import PairRecord, TaskRequest


def test_policy_by_hand() -> None:
    votes = [["a"], ["a"], ["a"], ["a", "b"], ["a", "a"], ["a", "b", "tie"], [], ["b"]]
    p_a = [0.55, 0.9, 0.1, 0.9, 0.5, 0.5, 0.5, None]
    # unsure → 2; confident and agreeing → 1; confident against the label → 2; split → 3;
    # two agree (model unsure) → 2; already at the cap → 3; nothing yet → 0; no model → 2
    assert labels_wanted(votes, p_a).tolist() == [2, 1, 2, 3, 2, 3, 0, 2]
    assert labels_wanted([["a", "b"]], [0.5], RedundancyPolicy(max_labels=2)).tolist() == [2]


def test_simulator_reopens_a_task_for_new_annotators_only(tmp_path: Path) -> None:
    backend = SimulatedBackend(
        BackendSettings(
            project="r",
            url=str(tmp_path),
            extra={
                "oracle": {"k1": "a"},
                "annotators": [{"id": "x"}, {"id": "y"}, {"id": "z"}],
                "annotators_per_pair": 1,
            },
        )
    )
    backend.push_tasks([TaskRequest("k1", "p", "a", "b")])
    first = backend.pull_labels().labels
    assert len(first) == 1
    assert backend.request_more_labels(["k1"], 3) == 1
    assert backend.request_more_labels(["k1"], 3) == 0, "asking again for the same total is a no-op"
    labels = backend.pull_labels().labels
    assert len({lb.annotator.external_id for lb in labels}) == 3 and len(labels) == 3
    with pytest.raises(BackendError, match="needs that many"):
        backend.request_more_labels(["k1"], 4)


def test_the_loop_asks_for_more_labels_only_where_needed(engine: Engine, tmp_path: Path) -> None:
    records = generated_records(30)
    oracle = write_oracle(records, tmp_path / "oracle.jsonl")
    with session_scope(engine) as session:
        add_pairs(session, [PairRecord(r.prompt, r.response_a, r.response_b) for r in records], source="gen")
    (tmp_path / "prefloop.toml").write_text(f"""
artifacts_dir = "{tmp_path / "artifacts"}"
[backend]
name = "simulated"
project = "adaptive"
url = "{tmp_path / "sim"}"
[backend.extra]
oracle_path = "{oracle}"
annotators = [{{id = "ace", accuracy = 1.0}}, {{id = "coin", accuracy = 0.5}}, {{id = "fair", accuracy = 0.8}}]
annotators_per_pair = 1
[acquisition]
strategy = "random"
queue_size = 10
[milestone]
min_labels = 1000
[annotators]
redundancy = "adaptive"
""")
    config = load_config(str(tmp_path / "prefloop.toml"))
    logs: list[dict] = []
    for _ in range(4):
        run_sync(engine, config, log=logs.append)
    asked = [s for s in logs if s["step"] == "redundancy"]
    assert asked[1]["asked_for_more"] == 10, "no model yet: every single label gets a second opinion"
    with session_scope(engine) as session:
        labels = list(session.scalars(select(Label)).unique())
        per_pair: dict[int, list[str]] = {}
        for lb in labels:
            per_pair.setdefault(lb.pair_id, []).append(lb.choice)
        first_ten = [t.pair_id for t in session.scalars(select(Task).order_by(Task.id).limit(10))]
        counts = Counter(len(per_pair[p]) for p in first_ten)
        for p in first_ten:
            two = per_pair[p][:2]
            assert len(per_pair[p]) == (3 if two[0] != two[1] else 2), "a third label only after a split"
        assert counts[3] >= 1 and counts[2] >= 1
        assert max(len(v) for v in per_pair.values()) <= 3
        assert all(t.status == "labeled" for t in session.scalars(select(Task).where(Task.pair_id.in_(first_ten))))
