"""Per-dimension answers pulled from a backend land as labels of their dimension, which training reads."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from prefloop.store.db import session_scope
from prefloop.store.labels import record_pull
from prefloop.store.models import Pair
from prefloop.store.pairs import add_pairs
from prefloop.store.queries import iter_labeled_rows, label_dimensions
from prefloop.types import AnnotatorRef, Choice, PairRecord, PulledLabel, PullResult


def test_one_annotation_with_dimension_answers_gives_a_label_per_dimension(engine: Engine) -> None:
    with session_scope(engine) as session:
        add_pairs(session, [PairRecord(prompt="p", response_a="a", response_b="b")], source="t")
        key = session.scalar(select(Pair.key))
    who = AnnotatorRef("u1", "u1@example.org")
    when = datetime(2026, 1, 1, tzinfo=UTC)
    # what the Label Studio and Argilla backends pull for one submitted annotation with
    # dimensions = ["helpful", "harmless"]: the overall choice plus one label per dimension
    pulled = [
        PulledLabel(key, who, Choice.A, "ann-1", "v1", updated_at=when),
        PulledLabel(key, who, Choice.A, "ann-1:helpful", "v1", dimension="helpful", updated_at=when),
        PulledLabel(key, who, Choice.B, "ann-1:harmless", "v1", dimension="harmless", updated_at=when),
    ]
    with session_scope(engine) as session:
        assert record_pull(session, "label_studio", "proj", PullResult(pulled, "c1")).new == 3
    with session_scope(engine) as session:
        assert label_dimensions(session) == ["harmless", "helpful", "overall"]
        by_dim = {d: [r.choice for r in iter_labeled_rows(session, dimension=d)] for d in label_dimensions(session)}
    assert by_dim == {"overall": ["a"], "helpful": ["a"], "harmless": ["b"]}
