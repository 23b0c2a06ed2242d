"""The store on SQLite and PostgreSQL: migrations, idempotent writes, label history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from prefloop.store.db import check_drift, current_revision, init_db, session_scope
from prefloop.store.labels import get_cursor, record_pull, set_cursor
from prefloop.store.models import Label, Pair, Task
from prefloop.store.pairs import add_pairs
from prefloop.store.tasks import excluded_pair_ids, record_tasks
from prefloop.types import AnnotatorRef, Choice, PairRecord, PulledLabel, PullResult, PushedTask


def _pairs(engine: Engine, n: int = 3) -> list[str]:
    records = [PairRecord(prompt=f"p{i}", response_a=f"a{i}", response_b=f"b{i}") for i in range(n)]
    with session_scope(engine) as session:
        add_pairs(session, records, source="t")
        return list(session.scalars(select(Pair.key).order_by(Pair.id)))


def _label(key: str, choice: Choice, source_id: str = "ann-1", version: str = "v1", who: str = "u1") -> PulledLabel:
    return PulledLabel(
        pair_key=key,
        annotator=AnnotatorRef(who, f"{who}@example.org"),
        choice=choice,
        source_id=source_id,
        version=version,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_migrations_reach_head_without_drift(engine: Engine, db_url: str) -> None:
    assert current_revision(engine) == "0005"
    assert check_drift(engine) == []
    assert init_db(db_url) == "0005", "running init again is a no-op upgrade"


def test_pair_needs_two_distinct_responses(engine: Engine) -> None:
    _pairs(engine, 1)
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        pair = session.scalars(select(Pair)).first()
        session.add(
            Pair(
                key="x" * 32,
                prompt_id=pair.prompt_id,
                response_a_id=pair.response_a_id,
                response_b_id=pair.response_a_id,
            )
        )
        session.flush()


def test_repulled_annotation_is_not_duplicated(engine: Engine) -> None:
    key = _pairs(engine)[0]
    result = PullResult(labels=[_label(key, Choice.A)], cursor="c1")
    with session_scope(engine) as session:
        first = record_pull(session, "ls", "proj", result)
        set_cursor(session, "ls", "proj", result.cursor)
    with session_scope(engine) as session:
        second = record_pull(session, "ls", "proj", result)
        assert get_cursor(session, "ls", "proj") == "c1"
    assert (first.new, second.new, second.duplicates) == (1, 0, 1)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count(Label.id))) == 1


def test_edit_supersedes_and_delete_marks(engine: Engine) -> None:
    key = _pairs(engine)[0]
    with session_scope(engine) as session:
        record_pull(session, "ls", "proj", PullResult([_label(key, Choice.A)], "c1"))
    with session_scope(engine) as session:
        counts = record_pull(session, "ls", "proj", PullResult([_label(key, Choice.TIE, version="v2")], "c2"))
        assert counts.edited == 1
    with session_scope(engine) as session:
        counts = record_pull(session, "ls", "proj", PullResult([], "c3", alive={key: frozenset()}))
        assert counts.deleted == 1
    with session_scope(engine) as session:
        rows = list(session.scalars(select(Label).order_by(Label.id)).unique())
    assert [(r.choice, r.is_current, r.deleted_at is not None) for r in rows] == [
        ("a", False, False),
        ("tie", True, True),
    ]
    assert rows[0].superseded_by_id == rows[1].id


def test_one_pull_with_many_labels_edits_and_deletions(engine: Engine) -> None:
    """A large pull in one call: two versions of one annotation, a re-pull, and a deletion elsewhere."""
    keys = _pairs(engine, 3)
    first = [_label(k, Choice.A, source_id=f"ann-{i}-{w}", who=w) for i, k in enumerate(keys) for w in ("u1", "u2")]
    edit = _label(keys[0], Choice.B, source_id="ann-0-u1", version="v2")
    again = _label(keys[0], Choice.TIE, source_id="ann-0-u1", version="v3")
    with session_scope(engine) as session:
        counts = record_pull(session, "ls", "proj", PullResult([*first, edit, again], "c1"))
        assert (counts.new, counts.edited) == (6, 2)
    alive = {keys[1]: frozenset({"ann-1-u1"})}  # ann-1-u2 was deleted at the source
    with session_scope(engine) as session:
        counts = record_pull(session, "ls", "proj", PullResult([*first, again], "c2", alive=alive))
        assert (counts.new, counts.edited, counts.duplicates, counts.deleted) == (0, 0, 7, 1)
    with session_scope(engine) as session:
        history = list(session.scalars(select(Label).where(Label.source_id == "ann-0-u1").order_by(Label.id)))
        assert [(r.version, r.choice, r.is_current) for r in history] == [
            ("v1", "a", False),
            ("v2", "b", False),
            ("v3", "tie", True),
        ]
        assert [r.superseded_by_id for r in history] == [history[1].id, history[2].id, None]
        deleted = session.scalars(select(Label).where(Label.deleted_at.is_not(None))).unique().all()
        assert [r.source_id for r in deleted] == ["ann-1-u2"]


def test_two_annotators_on_one_pair_and_task_status(engine: Engine) -> None:
    key = _pairs(engine)[0]
    with session_scope(engine) as session:
        record_tasks(session, "ls", [PushedTask(key, "t1", True, "proj")])
        record_tasks(session, "ls", [PushedTask(key, "t1", True, "proj")])
        assert session.scalar(select(func.count(Task.id))) == 1
    labels = [_label(key, Choice.A, "ann-1", who="u1"), _label(key, Choice.B, "ann-2", who="u2")]
    with session_scope(engine) as session:
        record_pull(session, "ls", "proj", PullResult(labels, "c1"), labels_per_task=2)
    with session_scope(engine) as session:
        assert session.scalar(select(Task.status)) == "labeled"
        assert session.scalar(select(func.count(func.distinct(Label.annotator_id)))) == 2


def test_excluded_pairs_cover_labeled_pending_and_held_out(engine: Engine) -> None:
    keys = _pairs(engine, 4)
    with session_scope(engine) as session:
        add_pairs(session, [PairRecord(prompt="t", response_a="x", response_b="y")], source="t", split="test")
        record_tasks(session, "ls", [PushedTask(keys[1], "t1", False, "proj")])
        record_pull(session, "ls", "proj", PullResult([_label(keys[0], Choice.A)], None))
    with session_scope(engine) as session:
        ids = dict(session.execute(select(Pair.key, Pair.id)).all())
        excluded = excluded_pair_ids(session)
    assert ids[keys[0]] in excluded and ids[keys[1]] in excluded
    assert ids[keys[2]] not in excluded and ids[keys[3]] not in excluded
    assert len(excluded) == 3


def test_unknown_pairs_are_reported_not_stored(engine: Engine) -> None:
    with session_scope(engine) as session:
        counts = record_pull(session, "ls", "proj", PullResult([_label("f" * 32, Choice.A)], None))
    assert counts.unknown_pairs == ["f" * 32] and counts.new == 0
