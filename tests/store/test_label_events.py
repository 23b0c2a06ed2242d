"""Labels from webhook events: out of order, twice, deleted first — the store ends as one poll after them leaves it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from prefloop.loop.record import record_labels
from prefloop.store.db import session_scope
from prefloop.store.models import Label, Pair
from prefloop.store.pairs import add_pairs
from prefloop.types import AnnotatorRef, Choice, PairRecord, PulledLabel, PullResult

WHO = AnnotatorRef("7", "alice@example.org")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def key(engine: Engine) -> str:
    with session_scope(engine) as session:
        add_pairs(session, [PairRecord(prompt="p", response_a="x", response_b="y")], source="t")
        return str(session.scalar(select(Pair.key)))


def _version(key: str, source: str, choice: Choice, minutes: int, *, dims: tuple[str, ...] = ()) -> list[PulledLabel]:
    at = T0 + timedelta(minutes=minutes)
    out = [PulledLabel(key, WHO, choice, source, at.isoformat(), created_at=T0, updated_at=at)]
    out += [
        PulledLabel(key, WHO, choice, f"{source}:{d}", at.isoformat(), dimension=d, created_at=T0, updated_at=at)
        for d in dims
    ]
    return out


def _live(engine: Engine) -> set[tuple[str, str, str]]:
    with session_scope(engine) as session:
        return {(row.source_id, row.version, row.choice) for row in session.scalars(select(Label).where(Label.live()))}


def _store(engine: Engine, *results: PullResult) -> None:
    for result in results:
        record_labels(engine, "label_studio", "proj", result)


def test_create_update_delete_in_every_order_and_twice_end_deleted(engine: Engine, key: str) -> None:
    create = PullResult(_version(key, "41", Choice.A, 0, dims=("helpful",)), None)
    update = PullResult(_version(key, "41", Choice.B, 1, dims=("helpful",)), None)
    delete = PullResult([], None, deleted={"41": T0 + timedelta(minutes=2)})
    for order in itertools.permutations([create, update, delete]):
        _store(engine, *order, *order)  # and each delivered twice
        assert _live(engine) == set(), f"a deleted annotation came back ({order})"


def test_update_before_create_keeps_the_update(engine: Engine, key: str) -> None:
    create = PullResult(_version(key, "42", Choice.A, 0), None)
    update = PullResult(_version(key, "42", Choice.B, 5), None)
    _store(engine, update, create, update, create)
    assert _live(engine) == {("42", (T0 + timedelta(minutes=5)).isoformat(), "b")}
    with session_scope(engine) as session:
        assert len(session.scalars(select(Label)).all()) == 1, "the late, older version is dropped, not stored"


def test_in_order_keeps_the_edit_history_as_a_poll_between_them_would(engine: Engine, key: str) -> None:
    _store(
        engine, PullResult(_version(key, "43", Choice.A, 0), None), PullResult(_version(key, "43", Choice.TIE, 3), None)
    )
    with session_scope(engine) as session:
        rows = session.scalars(select(Label).order_by(Label.id)).all()
        assert [(r.choice, r.is_current, r.superseded_by_id) for r in rows] == [
            ("a", False, rows[1].id),
            ("tie", True, None),
        ]


def test_one_batch_with_both_versions_and_a_duplicate_is_the_same_as_one_at_a_time(engine: Engine, key: str) -> None:
    """The receiver's writer merges waiting deliveries into one result: order inside it is kept."""
    merged = PullResult(
        _version(key, "44", Choice.A, 0) + _version(key, "44", Choice.B, 1) + _version(key, "44", Choice.B, 1), None
    )
    _store(engine, merged)
    assert _live(engine) == {("44", (T0 + timedelta(minutes=1)).isoformat(), "b")}


def test_a_poll_after_the_events_changes_nothing(engine: Engine, key: str) -> None:
    _store(
        engine, PullResult(_version(key, "45", Choice.A, 0), None), PullResult(_version(key, "45", Choice.B, 1), None)
    )
    before = _live(engine)
    poll = PullResult(_version(key, "45", Choice.B, 1), "cursor", alive={key: frozenset({"45"})})
    counts = record_labels(engine, "label_studio", "proj", poll, move_cursor=True)
    assert (counts.new, counts.edited, counts.deleted, counts.duplicates) == (0, 0, 0, 1)
    assert _live(engine) == before
