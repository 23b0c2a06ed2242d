"""``[acquisition]``: which pairs go to annotators next, and the strategy's own parameters."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from prefloop.config.fields import Section, setting

__all__ = ["STRATEGY_PARAMETERS", "AcquisitionSettings"]

#: ``[acquisition]`` field → the keyword of the strategy that takes it (unset = the strategy's default)
STRATEGY_PARAMETERS = {
    "beta": "beta",
    "n_targets": "n_targets",
    "tie_max": "tie_max",
    "min_epistemic_share": "min_epistemic_share",
    "shortlist": "shortlist",
    "shortlist_factor": "shortlist_factor",
    "diversity_method": "method",
    "score_weight": "score_weight",
    "n_neighbors": "n_neighbors",
    "entropy_dim": "dim",
    "length_share": "share",
    "length_quota": "quota",
}


@dataclass
class AcquisitionSettings(Section):
    """``[acquisition]``: which pairs go to annotators next.

    The strategy parameters (``beta`` ... ``entropy_dim``) are unset by default: the strategy's
    own default applies. One that the configured strategy does not take is refused when a
    command starts (the check runs through the strategies' registry, in ``loop/``).
    """

    SECTION: ClassVar[str] = "acquisition"

    strategy: str = setting(
        "noise_aware",
        "noise_aware (default: BALD that ranks likely ties and 50/50 human splits last; measured best on HH "
        "helpful, docs/benchmarks.md) | random | entropy | disagreement | bald | margin | epig | drts | "
        "delta_ucb | balpm[:<inner>] | diverse:<inner> | length_aware[:<inner>] (the inner strategy, default "
        "noise_aware, on length-residual rewards, with length_share of each batch kept for pairs whose "
        "preference follows length) | dimension_disagreement (pairs the heads of a "
        "multi-objective model prefer differently; needs [objectives] dimensions)",
    )
    queue_size: int = setting(50, "Pending tasks kept at the backend; each sync tops the queue up to this", ge=1)
    max_per_prompt: int | None = setting(2, "At most this many pairs of one prompt in one batch", ge=1)
    seed: int = setting(0, "Seed for random choices (cold start, tie-breaking)", ge=0)
    dimension: str | None = setting(
        None,
        'Score pairs by this dimension\'s head of a multi-objective model (e.g. "helpful"); unset = the '
        "model's reward: the [objectives] combination where configured, else its first dimension",
    )
    refresh_after_retrain: bool = setting(
        False,
        "After a retrain, withdraw pending tasks an older model chose that the "
        "new one no longer ranks in its top queue_size, and refill with its "
        "picks. Only tasks without annotations go; a Label Studio draft on one "
        "is lost",
    )
    beta: float | None = setting(
        None,
        "drts, delta_ucb: weight β of the reward spread σ (exploration) against the gap; balpm: weight β of the "
        "feature-space entropy gain (unset: 1.0)",
        ge=0,
    )
    n_targets: int | None = setting(None, "epig: pool pairs sampled as the prediction targets (unset: 100)", ge=1)
    tie_max: float | None = setting(
        None, "noise_aware: a pair whose mean predicted P(tie) is at least this ranks last (unset: 0.5)", ge=0, le=1
    )
    min_epistemic_share: float | None = setting(
        None,
        "noise_aware: a pair whose epistemic share of its uncertainty (BALD / entropy) is below this ranks "
        "last: humans split on it more than the model doubts (unset: 0.1)",
        ge=0,
        le=1,
    )
    shortlist: int | None = setting(
        None,
        "diverse, balpm: consider only the inner score's top this many pairs (unset: diverse "
        "shortlist_factor × batch, balpm every pair)",
        ge=1,
    )
    shortlist_factor: float | None = setting(
        None, "diverse: shortlist = this × the batch size, when shortlist is unset (unset: 10)", gt=0
    )
    diversity_method: Literal["kcenter", "kmeanspp"] | None = setting(
        None, "diverse: how the spread-out batch is picked from the shortlist (unset: kcenter)"
    )
    score_weight: float | None = setting(
        None, "diverse: pull towards the best scores while spreading out; 0 = spread only (unset: 0)", ge=0
    )
    n_neighbors: int | None = setting(None, "balpm: neighbours of the kNN entropy estimate (unset: 1)", ge=1)
    entropy_dim: int | None = setting(
        None, "balpm: the dimension d in the kNN entropy estimate (unset: the embeddings' width)", ge=1
    )
    length_share: float | None = setting(
        None,
        "length_aware: share of each batch kept for the length_quota pairs, round(share x batch) (unset: 0.25)",
        ge=0,
        le=1,
    )
    length_quota: Literal["follows", "against"] | None = setting(
        None,
        "length_aware: which pairs the share is kept for: 'follows' = the model prefers the side its fitted "
        "length rule prefers (the longer one if it leans to longer answers); 'against' = it prefers the "
        "other side (unset: follows)",
    )

    def strategy_params(self) -> dict[str, Any]:
        """The strategy parameters that are set, by the strategy's keyword (``diversity_method`` → ``method``)."""
        return {
            STRATEGY_PARAMETERS[f.name]: getattr(self, f.name)
            for f in fields(self)
            if f.name in STRATEGY_PARAMETERS and getattr(self, f.name) is not None
        }
