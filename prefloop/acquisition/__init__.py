"""Acquisition: which unlabelled pairs to put in front of annotators next.

Pure numpy: scores are functions of the ensemble's ``P(a≻b)`` array, batches are index
arrays. Never imports torch, the store or a backend.
"""

from __future__ import annotations

from prefloop.acquisition.batch import apply_prompt_cap, diverse_select, exclusion_mask, shortlist, top_k
from prefloop.acquisition.scores import (
    bald,
    disagreement,
    entropy,
    logit_disagreement,
    margin,
    outcome_probs,
    random_scores,
)
from prefloop.acquisition.strategies import (
    SCORERS,
    DiverseStrategy,
    ProbPool,
    ScoreStrategy,
    Selection,
    Strategy,
    available_strategies,
    get_strategy,
)

__all__ = [
    "SCORERS",
    "DiverseStrategy",
    "ProbPool",
    "ScoreStrategy",
    "Selection",
    "Strategy",
    "apply_prompt_cap",
    "available_strategies",
    "bald",
    "disagreement",
    "diverse_select",
    "entropy",
    "exclusion_mask",
    "get_strategy",
    "logit_disagreement",
    "margin",
    "outcome_probs",
    "random_scores",
    "shortlist",
    "top_k",
]
