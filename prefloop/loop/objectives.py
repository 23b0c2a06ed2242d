"""Several objectives on the store's data: score and evaluate a model per dimension (joins the
store and the model room; ``reward.py`` calls in here, ``train.py`` trains them).

- ``predict_dimensions``: what ``score`` stores for a model: one prediction per dimension, plus
  the ``combined`` reward when ``[objectives]`` combines them.
- ``evaluation_head``: which head and which labels ``eval --dimension`` reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session

from prefloop.acquisition import decisive_probs
from prefloop.errors import ConfigError, InvalidRequest
from prefloop.model import EnsemblePrediction, RewardEnsemble
from prefloop.model.objectives import MultiObjectiveModel
from prefloop.store.models import ModelVersion, Prediction
from prefloop.store.versions import (
    COMBINED,
    model_dimensions,
    predictions_for,
)

if TYPE_CHECKING:
    from prefloop.objectives import CombinedReward

__all__ = [
    "acquisition_predictions",
    "check_dimensions",
    "evaluation_head",
    "predict_dimensions",
    "scored_dimensions",
]


def check_dimensions(requested: Sequence[str], known: Sequence[str], what: str = "labels") -> None:
    """Each requested dimension must be known: else exit 2 naming the known ones."""
    if COMBINED in requested:
        raise InvalidRequest(f"{COMBINED!r} is the combined reward's name, not a label dimension; pick another")
    if len(set(requested)) != len(requested):
        raise InvalidRequest(f"--dimension given twice: {', '.join(requested)}")
    unknown = [d for d in requested if d not in known]
    if unknown:
        raise InvalidRequest(
            f"no {what} of dimension {', '.join(map(repr, unknown))}; "
            f"known dimensions: {', '.join(known) or 'none'} (ingest with `prefloop ingest FILE --dimension NAME`)"
        )


def scored_dimensions(ens: Any, row: ModelVersion, spec: CombinedReward | None) -> list[str]:
    """The prediction dimensions ``score`` stores for a model: each head's, plus ``combined``."""
    if not isinstance(ens, MultiObjectiveModel):
        return model_dimensions(row)[:1]
    if spec is not None:
        missing = [d for d in spec.dimensions if d not in ens.dimensions]
        if missing:
            raise InvalidRequest(
                f"[objectives] combines {', '.join(missing)}, but model {ens.name} has no head for it; its "
                f"dimensions: {', '.join(ens.dimensions)}. Fix [objectives] or train with those --dimension"
            )
        return [*ens.dimensions, COMBINED]
    return ens.dimensions


def predict_dimensions(
    ens: Any, row: ModelVersion, texts: list[tuple[str, str, str]], spec: CombinedReward | None, progress: bool
) -> dict[str, EnsemblePrediction]:
    """Dimension → predictions on ``texts``: each head's, and the combined reward's when ``spec``."""
    if not isinstance(ens, MultiObjectiveModel):
        return {model_dimensions(row)[0]: ens.predict(texts, progress=progress)}
    preds = ens.predict_all(texts, progress=progress)
    if spec is not None:
        preds[COMBINED] = ens.combine(preds, spec)
    return preds


def evaluation_head(
    ens: Any, row: ModelVersion, dimension: str | None, texts: list[tuple[str, str, str]] | None = None
) -> tuple[RewardEnsemble, str, list[tuple[str, str, str]] | None]:
    """(the ensemble to evaluate, the label dimension to read, the texts as that head reads them).

    A multi-objective model evaluates the named head (default: its first dimension) and an
    unknown name is exit 2 listing its heads; a single-objective model has one head, and
    ``dimension`` only chooses which labels it is measured on.
    """
    if isinstance(ens, MultiObjectiveModel):
        dim = dimension or ens.dimensions[0]
        if dim not in ens.dimensions:
            raise InvalidRequest(
                f"model {ens.name} has no head for dimension {dim!r}; its dimensions: {', '.join(ens.dimensions)}"
            )
        return ens.head(dim), dim, ens.inputs(texts, dim) if texts is not None else None
    return ens, dimension or model_dimensions(row)[0], texts


def acquisition_predictions(
    session: Session, model: ModelVersion, pair_ids: Sequence[int], dimension: str | None
) -> tuple[dict[int, Prediction], dict[int, np.ndarray] | None]:
    """What acquisition reads for the pool: pair id → the prediction it ranks by, and (for a model
    with several heads) pair id → each head's P(a≻b | not a tie), for ``dimension_disagreement``.

    ``dimension`` (``[acquisition] dimension``) targets one head; None takes the model's reward
    (the combined reward where ``score`` stored one, else its first dimension).
    """
    dims = model_dimensions(model)
    if dimension is not None and dimension not in (*dims, COMBINED):
        raise ConfigError(
            f"[acquisition] dimension {dimension!r}: model {model.name} has no head for it; "
            f"its dimensions: {', '.join(dims)}"
        )
    preds = predictions_for(session, model.id, pair_ids, dimension)
    if len(dims) < 2:
        return preds, None
    per = [predictions_for(session, model.id, pair_ids, d) for d in dims]
    q = {
        p: np.array([float(decisive_probs(np.array(h[p].p_a), np.array(h[p].p_tie))) for h in per])
        for p in pair_ids
        if all(p in h for h in per)
    }
    return preds, q
