"""Aggregation where labels become training data: examples per pair and ``prefloop train --aggregate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from prefloop.annotators import aggregate_labels
from prefloop.errors import PrefloopError
from prefloop.loop.reward import training_examples
from prefloop.store.db import make_engine, session_scope
from prefloop.store.models import ModelVersion
from prefloop.store.pairs import add_pairs
from prefloop.store.queries import iter_labeled_rows
from prefloop.types import Choice, PairRecord
from tests.clirun import run


def _store(engine: Engine) -> list:
    votes = {"p1": "aab", "p2": "ab", "p3": "ttt", "p4": "bbb"}
    records = [
        PairRecord(p, f"{p} one", f"{p} two", Choice(v if v != "t" else "tie"), annotator=f"u{i}")
        for p, vs in votes.items()
        for i, v in enumerate(vs)
    ]
    with session_scope(engine) as session:
        add_pairs(session, records, source="t")
    with session_scope(engine) as session:
        return list(iter_labeled_rows(session))


def test_examples_per_aggregation(sqlite_engine: Engine) -> None:
    rows = _store(sqlite_engine)
    none = training_examples(rows, "none")
    assert len(none) == 11 and all(ex.weight == 1.0 for _, ex in none)
    majority = training_examples(rows, "majority")
    assert len(majority) == 3  # p2's 1–1 split is left out
    assert {ex.prompt for _, ex in majority} == {"p1", "p3", "p4"}
    ds = training_examples(rows, "dawid-skene")
    total: dict[str, float] = {}
    for _, ex in ds:
        total[ex.prompt] = total.get(ex.prompt, 0.0) + ex.weight
    assert total == pytest.approx({"p1": 1.0, "p2": 1.0, "p3": 1.0, "p4": 1.0}, abs=1e-5)
    post = aggregate_labels(
        [r.pair_id for r in rows], [(r.backend, r.annotator) for r in rows], [r.choice for r in rows], "dawid-skene"
    )
    p1 = next(r.pair_id for r in rows if r.prompt == "p1")
    weights = {ex.choice.value: ex.weight for _, ex in ds if ex.prompt == "p1"}
    np.testing.assert_allclose([weights.get(c, 0.0) for c in ("a", "b", "tie")], post[p1], atol=1e-6)
    newest = {ex.prompt: lid for lid, ex in ds}
    assert newest["p4"] == max(r.label_id for r in rows if r.prompt == "p4")
    with pytest.raises(PrefloopError, match="unknown aggregation"):
        training_examples(rows, "median")


@pytest.mark.slow  # trains a reward model through the CLI (~100 s loaded)
def test_train_with_dawid_skene_soft_targets_from_the_command_line(tmp_path: Path) -> None:
    from prefloop.loop.demo import generated_records

    rng = np.random.default_rng(0)
    lines = []
    for r in generated_records(40, seed=5):
        for who, accuracy in (("careful", 0.95), ("hasty", 0.7), ("random", 0.5)):
            label = r.label.value if rng.random() < accuracy else r.label.flipped().value
            lines.append(
                {
                    "prompt": r.prompt,
                    "response_a": r.response_a,
                    "response_b": r.response_b,
                    "label": label,
                    "annotator": who,
                }
            )
    (tmp_path / "votes.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (tmp_path / "prefloop.toml").write_text('[model]\nk = 1\nmax_length = 64\naggregate = "dawid-skene"\n')
    run(tmp_path, "ingest", "votes.jsonl")
    name = run(tmp_path, "train").stdout.strip()
    majority = run(tmp_path, "train", "--aggregate", "majority").stdout.strip()
    assert name.startswith("rm-") and majority.startswith("rm-") and name != majority
    engine = make_engine(f"sqlite:///{tmp_path / 'prefloop.db'}")
    with session_scope(engine) as session:
        configs = {m.name: m.config for m in session.scalars(select(ModelVersion))}
    engine.dispose()
    assert configs[name]["aggregate"] == "dawid-skene" and configs[majority]["aggregate"] == "majority"
