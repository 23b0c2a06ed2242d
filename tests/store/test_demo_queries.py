"""The store functions the demo reads: labels on pool pairs, and who voted what on each pair."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from prefloop.store.db import session_scope
from prefloop.store.labels import record_pull
from prefloop.store.models import Pair
from prefloop.store.pairs import add_pairs
from prefloop.store.queries import pool_label_counts, votes_by_annotator
from prefloop.types import AnnotatorRef, Choice, PairRecord, PulledLabel, PullResult


def _label(
    key: str, who: str, choice: Choice, source: str, version: str = "v1", dimension: str = "overall"
) -> PulledLabel:
    return PulledLabel(
        pair_key=key,
        annotator=AnnotatorRef(who),
        choice=choice,
        source_id=source,
        version=version,
        dimension=dimension,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _store(engine: Engine) -> tuple[list[str], list[int]]:
    with session_scope(engine) as session:
        add_pairs(session, [PairRecord(f"p{i}", f"a{i}", f"b{i}") for i in range(3)], source="t")
        add_pairs(session, [PairRecord("held", "x", "y")], source="t-test", split="test")
    with session_scope(engine) as session:
        rows = session.execute(select(Pair.key, Pair.id).order_by(Pair.id)).all()
    keys, ids = [r[0] for r in rows], [r[1] for r in rows]
    p0, p1, p2, held = keys
    labels = [
        _label(p0, "ann", Choice.A, "s1"),
        _label(p0, "bob", Choice.B, "s2"),
        _label(p0, "bob", Choice.A, "s2:helpful", dimension="helpful"),  # a dimension: not an overall vote
        _label(p1, "ann", Choice.SKIP, "s3"),  # a skip is no label
        _label(p2, "ann", Choice.TIE, "s4"),
        _label(held, "ann", Choice.A, "s5"),  # a held-out pair: not the annotators' pool work
    ]
    with session_scope(engine) as session:
        record_pull(session, "sim", "demo", PullResult(labels=labels, cursor="c1"))
    with session_scope(engine) as session:  # ann changes her mind on p2: only the current version counts
        record_pull(session, "sim", "demo", PullResult(labels=[_label(p2, "ann", Choice.B, "s4", "v2")], cursor="c2"))
    return keys, ids


def test_pool_label_counts_leave_out_skips_held_out_pairs_and_old_versions(engine: Engine) -> None:
    _store(engine)
    with session_scope(engine) as session:
        # p0: two overall labels and one dimension label; p2: its current label. Pairs: p0 and p2.
        assert pool_label_counts(session) == (4, 2)


def test_votes_by_annotator_are_current_overall_non_skip_choices(engine: Engine) -> None:
    _, (p0, _p1, p2, held) = _store(engine)
    with session_scope(engine) as session:
        votes = votes_by_annotator(session)
    assert votes == {p0: {"ann": "a", "bob": "b"}, p2: {"ann": "b"}, held: {"ann": "a"}}


def test_an_empty_store_has_no_votes(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert pool_label_counts(session) == (0, 0) and votes_by_annotator(session) == {}
