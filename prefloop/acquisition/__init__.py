"""Acquisition: which unlabelled pairs to put in front of annotators next.

Pure numpy: scores are functions of the ensemble's ``P(a≻b)`` array (``scores``; the
literature's DRTS, DeltaUCB, EPIG and a noise-aware BALD in ``literature``; BAL-PM's
feature-space entropy in ``feature_entropy``), batches are index arrays. Never imports torch,
the store or a backend.
"""

from __future__ import annotations

from prefloop.acquisition.batch import apply_prompt_cap, diverse_select, exclusion_mask, shortlist, top_k
from prefloop.acquisition.feature_entropy import (
    entropy_greedy_select,
    knn_distances,
    knn_entropy,
    knn_entropy_gain,
)
from prefloop.acquisition.length import follows_length, length_gap, length_residual
from prefloop.acquisition.literature import aleatoric_mask, delta_ucb, drts, epig, noise_aware, reward_posterior
from prefloop.acquisition.objectives import decisive_probs, dimension_disagreement
from prefloop.acquisition.scores import (
    bald,
    disagreement,
    entropy,
    logit_disagreement,
    margin,
    outcome_probs,
    random_scores,
    reward_gaps,
)
from prefloop.acquisition.strategies import (
    POOL_SCORERS,
    SCORERS,
    DiverseStrategy,
    EntropyBatchStrategy,
    LengthAwareStrategy,
    ProbPool,
    ScoreStrategy,
    Selection,
    Strategy,
    available_strategies,
    configured_strategy,
    get_strategy,
)

__all__ = [
    "POOL_SCORERS",
    "SCORERS",
    "DiverseStrategy",
    "EntropyBatchStrategy",
    "LengthAwareStrategy",
    "ProbPool",
    "ScoreStrategy",
    "Selection",
    "Strategy",
    "aleatoric_mask",
    "apply_prompt_cap",
    "available_strategies",
    "bald",
    "configured_strategy",
    "decisive_probs",
    "delta_ucb",
    "dimension_disagreement",
    "disagreement",
    "diverse_select",
    "drts",
    "entropy",
    "entropy_greedy_select",
    "epig",
    "exclusion_mask",
    "follows_length",
    "get_strategy",
    "knn_distances",
    "knn_entropy",
    "knn_entropy_gain",
    "length_gap",
    "length_residual",
    "logit_disagreement",
    "margin",
    "noise_aware",
    "outcome_probs",
    "random_scores",
    "reward_gaps",
    "reward_posterior",
    "shortlist",
    "top_k",
]
