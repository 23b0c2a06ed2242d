"""Migration 0004: predictions per (model, pair, dimension), upgrading a store that has predictions."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from prefloop.store.db import _alembic_config, check_drift, current_revision, init_db, make_engine, session_scope
from prefloop.store.models import ModelVersion, Pair, Prediction
from prefloop.store.pairs import add_pairs
from prefloop.store.versions import (
    guesses_for,
    predictions_for,
    record_model_version,
    reward_dimension,
    save_predictions,
    unscored_pair_ids,
)
from prefloop.types import PairRecord


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_at_0003(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A store migrated only to 0003 (before this change), on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/old.db"
    else:
        from tests.conftest import _reset_pg

        url = request.getfixturevalue("pg_server_url")
        _reset_pg(url)
    engine = make_engine(url)
    config = _alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    engine.dispose()
    return url


def _model_and_pairs(engine: Engine, config: dict | None = None) -> tuple[int, list[int]]:
    with session_scope(engine) as session:
        add_pairs(session, [PairRecord(prompt=f"p{i}", response_a=f"a{i}", response_b=f"b{i}") for i in range(2)], "t")
        row = record_model_version(
            session,
            name="rm-old",
            parent_id=None,
            base_model="m",
            mode="heads",
            config=config or {},
            artifact_path=None,
            snapshot={},
            metrics={},
        )
        return row.id, list(session.scalars(select(Pair.id).order_by(Pair.id)))


def test_upgrade_keeps_old_predictions_as_overall_and_allows_one_per_dimension(store_at_0003: str) -> None:
    engine = make_engine(store_at_0003)
    model_id, pairs = _model_and_pairs(engine)
    with engine.begin() as conn:  # a prediction written by the old schema (no dimension column)
        conn.execute(
            text(
                "INSERT INTO predictions (model_version_id, pair_id, p_a, p_tie, spread, members, created_at) "
                "VALUES (:m, :p, 0.7, 0.1, 0.0, '[0.7]', CURRENT_TIMESTAMP)"
            ),
            {"m": model_id, "p": pairs[0]},
        )
    assert current_revision(engine) == "0003"
    assert init_db(store_at_0003) >= "0004", "upgraded past the dimension column (to head)"
    assert check_drift(engine) == []
    with session_scope(engine) as session:
        (old,) = session.scalars(select(Prediction)).all()
        assert (old.dimension, old.p_a) == ("overall", 0.7)
        model = session.get(ModelVersion, model_id)
        assert reward_dimension(session, model) == "overall"
        assert predictions_for(session, model_id, pairs)[pairs[0]].p_a == 0.7
        # a second dimension on the same (model, pair) is a new row, the same dimension again is ignored
        save_predictions(session, model_id, [pairs[0]], [0.2], [0.0], [0.0], [[0.2]], dimension="harmless")
        save_predictions(session, model_id, [pairs[0]], [0.9], [0.0], [0.0], [[0.9]], dimension="overall")
    with session_scope(engine) as session:
        rows = {p.dimension: p.p_a for p in session.scalars(select(Prediction))}
        assert rows == {"overall": 0.7, "harmless": 0.2}
        assert unscored_pair_ids(session, model_id, pairs, ["overall"]) == [pairs[1]]
        assert unscored_pair_ids(session, model_id, pairs, ["overall", "helpful"]) == pairs
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO predictions (model_version_id, pair_id, dimension, p_a, p_tie, spread, members, "
                "created_at) VALUES (:m, :p, 'harmless', 0.5, 0.0, 0.0, '[]', CURRENT_TIMESTAMP)"
            ),
            {"m": model_id, "p": pairs[0]},
        )
    engine.dispose()


def test_reward_is_the_combined_row_when_scored_else_the_first_dimension(engine: Engine) -> None:
    model_id, pairs = _model_and_pairs(engine, {"dimensions": ["helpful", "harmless"]})
    with session_scope(engine) as session:
        save_predictions(session, model_id, pairs, [0.8, 0.6], [0, 0], [0, 0], [[0.8], [0.6]], dimension="helpful")
        save_predictions(session, model_id, pairs, [0.1, 0.3], [0, 0], [0, 0], [[0.1], [0.3]], dimension="harmless")
    with session_scope(engine) as session:
        model = session.get(ModelVersion, model_id)
        assert reward_dimension(session, model) == "helpful"
        assert {p: r.p_a for p, r in predictions_for(session, model_id, pairs).items()} == dict(
            zip(pairs, [0.8, 0.6], strict=True)
        )
        assert predictions_for(session, model_id, pairs, "harmless")[pairs[1]].p_a == 0.3
        save_predictions(session, model_id, pairs, [0.4, 0.5], [0, 0], [0, 0], [[0.4], [0.5]], dimension="combined")
    with session_scope(engine) as session:
        model = session.get(ModelVersion, model_id)
        assert reward_dimension(session, model) == "combined"
        assert guesses_for(session, pairs) == {(model_id, pairs[0]): 0.4, (model_id, pairs[1]): 0.5}
