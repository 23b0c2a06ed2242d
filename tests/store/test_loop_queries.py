"""The store functions sync and status share: planning tasks, the pool left to choose from, the milestone."""

from __future__ import annotations

from sqlalchemy import Engine

from prefloop.store.db import session_scope
from prefloop.store.pairs import add_pairs
from prefloop.store.queries import pair_texts, response_lengths
from prefloop.store.tasks import last_task_id, pending_by_backend, plan_tasks, planned_tasks, pool_candidates
from prefloop.store.versions import milestone_due, record_model_version
from prefloop.types import Choice, PairRecord


def _pairs(engine: Engine, n: int, labeled: int = 0) -> list[int]:
    records = [PairRecord(f"q{i}", f"a{i}", f"b{i}", label=Choice.A if i < labeled else None) for i in range(n)]
    with session_scope(engine) as session:
        add_pairs(session, records, source="test")
    with session_scope(engine) as session:
        return [pair_id for pair_id, _ in pool_candidates(session)]


def test_planned_tasks_leave_the_pool_and_a_replanned_pair_keeps_its_row(engine: Engine) -> None:
    free = _pairs(engine, 6)
    assert len(free) == 6
    with session_scope(engine) as session:
        assert last_task_id(session) == 0
        plan_tasks(
            session,
            "simulated",
            "p",
            [(free[0], 0.9, False), (free[1], 0.1, True)],
            strategy="bald",
            params={},
            model_version_id=None,
        )
    with session_scope(engine) as session:
        planned = planned_tasks(session, "simulated", "p")
        assert sorted(t.pair_id for t in planned) == free[:2] and {t.gold for t in planned} == {False, True}
        assert planned_tasks(session, "simulated", "other") == []
        assert [p for p, _ in pool_candidates(session)] == free[2:], "planned pairs are not chosen again"
        assert [p for p, _ in pool_candidates(session, include=[free[0]], skip=[free[2]])] == [free[0], *free[3:]]
        assert pending_by_backend(session) == {"simulated": 2}
        first = last_task_id(session)
        planned[0].status = "withdrawn"
    with session_scope(engine) as session:
        plan_tasks(
            session,
            "simulated",
            "p",
            [(free[0], 0.5, False)],
            strategy="entropy",
            params={"k": 1},
            model_version_id=None,
        )
    with session_scope(engine) as session:
        assert last_task_id(session) == first, "the withdrawn pair's row was reused, no new row"
        again = {t.pair_id: t for t in planned_tasks(session, "simulated", "p")}
        assert again[free[0]].strategy == "entropy" and again[free[0]].status == "pending"
        both = pair_texts(session, [free[1], free[0]])
        assert both == [*pair_texts(session, [free[1]]), *pair_texts(session, [free[0]])] and both[0] != both[1]
        assert {t[0] for t in pair_texts(session, free)} == {f"q{i}" for i in range(6)}


def test_milestone_due_is_one_rule_for_sync_and_status(engine: Engine) -> None:
    _pairs(engine, 5, labeled=3)
    with session_scope(engine) as session:
        first = milestone_due(session, every=2, min_labels=3)
        assert first == (True, None, 3, 3), "the first model needs min_labels"
        assert milestone_due(session, every=2, min_labels=4).due is False
        record_model_version(
            session,
            name="rm-x",
            parent_id=None,
            base_model="b",
            mode="heads",
            config={},
            artifact_path="/nowhere",
            snapshot={"max_label_id": 10**9, "n_labels": 3},
            metrics={},
        )
    with session_scope(engine) as session:
        after = milestone_due(session, every=2, min_labels=3)
        assert after.model == "rm-x" and after.since == 0 and after.needed == 2 and not after.due


def test_response_lengths_count_characters_of_each_side_in_canonical_order(engine: Engine) -> None:
    records = [PairRecord(f"q{i}", "é" * (i + 1), "b" * (10 * i + 3)) for i in range(3)]
    with session_scope(engine) as session:
        add_pairs(session, records, source="test")
    with session_scope(engine) as session:
        ids = [pair_id for pair_id, _ in pool_candidates(session)]
        texts = dict(zip(ids, pair_texts(session, ids), strict=True))
        lengths = response_lengths(session, ids)
    assert set(lengths) == set(ids)
    assert {pid: (len(texts[pid][1]), len(texts[pid][2])) for pid in ids} == lengths, "characters, not bytes"
