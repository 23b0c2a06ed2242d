"""What the sync cycle's acquisition reads from a multi-objective model's stored predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine, select

from prefloop.config import AcquisitionSettings, LoopConfig, ObjectivesSettings
from prefloop.errors import ConfigError
from prefloop.loop.candidates import candidate_pairs
from prefloop.loop.objectives import acquisition_predictions
from prefloop.store.db import session_scope
from prefloop.store.models import ModelVersion, Pair
from prefloop.store.pairs import add_pairs
from prefloop.store.versions import record_model_version, save_predictions
from prefloop.types import PairRecord

# P(a≻b) and P(tie) of the helpful and harmless heads on four pool pairs
HELPFUL = ([0.8, 0.7, 0.3, 0.6], [0.0, 0.2, 0.0, 0.0])  # decisive q: 0.8, 0.875, 0.3, 0.6
HARMLESS = ([0.7, 0.2, 0.9, 0.1], [0.0, 0.0, 0.1, 0.0])  # decisive q: 0.7, 0.2, 1.0, 0.1


def _store(engine: Engine) -> tuple[ModelVersion, list[int]]:
    with session_scope(engine) as session:
        add_pairs(session, [PairRecord(prompt=f"p{i}", response_a=f"a{i}", response_b=f"b{i}") for i in range(4)], "t")
        pairs = list(session.scalars(select(Pair.id).order_by(Pair.id)))
        row = record_model_version(
            session,
            name="rm-two",
            parent_id=None,
            base_model="m",
            mode="heads",
            config={"dimensions": ["helpful", "harmless"]},
            artifact_path=None,
            snapshot={},
            metrics={},
        )
        for dim, (p_a, p_tie) in (("helpful", HELPFUL), ("harmless", HARMLESS)):
            members = [[p] for p in p_a]
            save_predictions(session, row.id, pairs, p_a, p_tie, [0.0] * 4, members, dimension=dim)
        session.expunge(row)
        return row, pairs


def test_each_head_decisive_probability_reaches_acquisition(engine: Engine) -> None:
    model, pairs = _store(engine)
    with session_scope(engine) as session:
        preds, heads = acquisition_predictions(session, model, pairs, None)
        assert [preds[p].p_a for p in pairs] == HELPFUL[0]  # the reward: the first dimension
        assert np.allclose([heads[p] for p in pairs], [[0.8, 0.7], [0.875, 0.2], [0.3, 1.0], [0.6, 0.1]])
        harmless, _ = acquisition_predictions(session, model, pairs, "harmless")
        assert [harmless[p].p_a for p in pairs] == HARMLESS[0]
        with pytest.raises(ConfigError, match="no head for it; its dimensions: helpful, harmless"):
            acquisition_predictions(session, model, pairs, "honest")


def test_sync_candidates_rank_by_disagreement_between_heads(engine: Engine) -> None:
    model, pairs = _store(engine)
    config = LoopConfig(
        acquisition=AcquisitionSettings(strategy="dimension_disagreement", max_per_prompt=None),
        objectives=ObjectivesSettings(dimensions=["helpful", "harmless"]),
    )
    chosen, scores, strategy, _ = candidate_pairs(engine, config, 2, model)
    # scores 2·max(0, min(q⁺ − ½, ½ − q⁻)): 0, 2·min(0.375, 0.3) = 0.6, 2·min(0.5, 0.2) = 0.4, 2·min(0.1, 0.4) = 0.2
    assert strategy == "dimension_disagreement"
    assert chosen == [pairs[1], pairs[2]] and scores == pytest.approx([0.6, 0.4])


def test_strategy_parameters_of_the_settings_reach_the_sync_cycle(engine: Engine) -> None:
    model, _ = _store(engine)
    config = LoopConfig(
        acquisition=AcquisitionSettings(strategy="epig", n_targets=3, max_per_prompt=None),
    )
    chosen, _, strategy, params = candidate_pairs(engine, config, 2, model)
    assert strategy == "epig" and len(chosen) == 2
    assert params == {"n_targets": 3}, "the parameter [acquisition] set, recorded on each task"
