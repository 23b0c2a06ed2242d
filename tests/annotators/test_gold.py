"""Gold checks through the loop: mixed into the queue, scored, never trained on, failing annotators excluded."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, func, select

from prefloop.annotators import QualityThresholds
from prefloop.config import AnnotatorSettings, load_config
from prefloop.loop.annotator_quality import annotators_report
from prefloop.loop.demo import generated_records, write_oracle
from prefloop.loop.gold import add_gold_file, derive_gold
from prefloop.loop.reward import gold_weights, training_examples
from prefloop.loop.sync import run_sync
from prefloop.store.db import session_scope
from prefloop.store.models import GoldAnswer, Label, Pair, Task
from prefloop.store.pairs import add_pairs
from prefloop.store.queries import iter_labeled_rows
from prefloop.store.versions import labels_since
from prefloop.types import PairRecord


def _config(tmp_path: Path, oracle: Path) -> Path:
    path = tmp_path / "prefloop.toml"
    path.write_text(f"""
artifacts_dir = "{tmp_path / "artifacts"}"
[backend]
name = "simulated"
project = "gold-test"
url = "{tmp_path / "sim"}"
annotators_per_pair = 2
[backend.extra]
oracle_path = "{oracle}"
annotators = [{{id = "ace", accuracy = 1.0}}, {{id = "contrarian", accuracy = 0.0}}]
[acquisition]
strategy = "random"
queue_size = 20
[milestone]
min_labels = 1000
[annotators]
gold_rate = 0.25
gold_min_labels = 3
""")
    return path


def test_gold_checks_are_mixed_in_scored_and_never_trained_on(engine: Engine, tmp_path: Path) -> None:
    records = generated_records(60)
    pool, gold = records[:40], records[40:]
    oracle = write_oracle(records, tmp_path / "oracle.jsonl")
    (tmp_path / "gold.jsonl").write_text(
        "".join(
            json.dumps(
                {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b, "label": r.label.value}
            )
            + "\n"
            for r in gold
        )
    )
    with session_scope(engine) as session:
        add_pairs(session, [PairRecord(r.prompt, r.response_a, r.response_b) for r in pool], source="gen")
    assert add_gold_file(engine, str(tmp_path / "gold.jsonl")) == {"pairs": 20, "gold_answers": 20, "conflicting": 0}
    with session_scope(engine) as session:
        assert session.scalar(select(func.count(Pair.id)).where(Pair.split == "gold")) == 20
        assert session.scalar(select(func.count(Label.id))) == 0, "a gold file adds answers, not labels"
    config = load_config(str(_config(tmp_path, oracle)))
    config.db = None
    logs: list[dict] = []
    run_sync(engine, config, log=logs.append)
    push = next(s for s in logs if s["step"] == "push")
    assert push["planned"] == 20 and push["gold"] == 5
    with session_scope(engine) as session:
        tasks = list(session.scalars(select(Task)))
        gold_tasks = [t for t in tasks if t.gold]
        ordinary = [t for t in tasks if not t.gold]
        assert len(gold_tasks) == 5
        # nothing about a gold task tells it apart: same strategy, model and a score from its batch
        assert {t.strategy for t in gold_tasks} == {t.strategy for t in ordinary}
        assert {t.score for t in gold_tasks} <= {t.score for t in ordinary}
        assert {t.model_version_id for t in gold_tasks} == {t.model_version_id for t in ordinary}
        gold_pairs = {t.pair_id for t in gold_tasks}
        assert gold_pairs <= set(session.scalars(select(GoldAnswer.pair_id)))
    run_sync(engine, config, log=logs.append)  # the simulated annotators answer; this pull stores it
    with session_scope(engine) as session:
        labels = list(session.scalars(select(Label)).unique())
        on_gold = [lb for lb in labels if lb.pair_id in gold_pairs]
        assert len(on_gold) == 10 and all(lb.gold for lb in on_gold)
        assert not any(lb.gold for lb in labels if lb.pair_id not in gold_pairs)
        ordinary_labels = len(labels) - len(on_gold)
        assert ordinary_labels == 30
        assert labels_since(session, None) == 30, "gold answers do not count toward the milestone"
        assert len(list(iter_labeled_rows(session))) == 30, "nor as training (or export) labels"
        assert len(list(iter_labeled_rows(session, include_gold=True))) == 40
        weights = gold_weights(session, AnnotatorSettings(gold_min_labels=3))
        rows = list(iter_labeled_rows(session, split="pool"))
    assert weights == {("simulated", "ace"): 1.0, ("simulated", "contrarian"): 0.0}
    kept = training_examples(rows, "none", weights)
    assert len(kept) == 15 and all(ex.weight == 1.0 for _, ex in kept)
    report = annotators_report(engine, thresholds=QualityThresholds(gold_min_labels=3))
    rows_by = {r["annotator"]: r for r in report["annotators"]}
    assert rows_by["ace"]["gold"] == {"n": 5, "accuracy": 1.0} and "failed gold" not in rows_by["ace"]["reasons"]
    # two annotators who always disagree: only the gold answers say which one is right
    assert rows_by["ace"]["reliability"] > 0.9 > 0.5 > rows_by["contrarian"]["reliability"]
    assert rows_by["contrarian"]["gold"] == {"n": 5, "accuracy": 0.0}
    assert "failed gold" in rows_by["contrarian"]["reasons"]
    assert rows_by["ace"]["labels"] == 15, "gold answers are reported apart from ordinary labels"


def test_downweight_and_derived_gold(engine: Engine) -> None:
    records = [
        PairRecord(f"q{i}", f"x{i}", f"y{i}", r.label, annotator=who)
        for i, r in enumerate(generated_records(30))
        for who in ("u1", "u2", "u3")
    ]
    with session_scope(engine) as session:
        add_pairs(session, records, source="votes")
    result = derive_gold(engine, min_labels=3, min_reliability=0.5)
    assert result["trusted_annotators"] == ["u1", "u2", "u3"]
    assert result["gold_answers"] == result["candidates"] == 30
    assert derive_gold(engine, min_labels=3, min_reliability=0.5)["gold_answers"] == 0, "a second run adds none"
    with session_scope(engine) as session:
        assert gold_weights(session, AnnotatorSettings(low_gold="downweight")) == {}
