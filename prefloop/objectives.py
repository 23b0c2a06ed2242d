"""One reward from several objectives: a weighted sum, or one objective maximised under constraints.

Pure numpy over the per-dimension member rewards of a multi-objective model. Every head's
reward is first put on a common footing:

- **calibrated**: divided by that head's temperature T_d, so σ(r(a) − r(b)) is the head's
  calibrated P(a≻b) (ignoring its tie mass);
- **centred**: member k's reward minus its mean over the responses of that dimension's
  training pairs (c_{d,k}), so 0 is "an average training response". A Bradley-Terry reward is
  defined only up to a constant; centring fixes the constant, which makes a threshold mean
  something: r ≥ τ ⇔ P(response ≻ an average training response) ≥ σ(τ), so τ = 0 is "at least
  even odds against the average response" and τ = logit(p) asks for odds p.

Then, per member k and response x (``CombinedReward``):

- ``weights`` {d: w_d ≥ 0}: R_k(x) = Σ_d w_d·r_{d,k}(x) / Σ_d w_d (a weighted mean, so the
  combined reward keeps the heads' probability scale);
- ``maximize`` m with ``constraints`` {c: τ_c}: R_k(x) = r_{m,k}(x) − λ·Σ_c max(0, τ_c − r_{c,k}(x)),
  an exact-penalty (hinge) relaxation of "maximise m subject to r_c ≥ τ_c": a response that
  meets every constraint is ranked by m alone; one that misses a constraint by δ loses λ·δ.
  λ (``penalty``, default 10) is in reward units per unit of violation.

The combined preference of member k is P_k(a≻b) = σ(R_k(a) − R_k(b)), a plain Bradley-Terry
probability: the combined reward ranks responses, it has no tie mass (P(tie) = 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from prefloop.config import ObjectivesSettings, combination_problem
from prefloop.errors import ModelError

__all__ = ["CombinedReward", "combine_member_rewards", "combined_probabilities", "combined_reward"]


@dataclass(frozen=True)
class CombinedReward:
    """How several objectives make one reward (see the module docstring for the maths)."""

    weights: Mapping[str, float] = field(default_factory=dict)
    maximize: str | None = None
    constraints: Mapping[str, float] = field(default_factory=dict)
    penalty: float = 10.0

    def __post_init__(self) -> None:
        problem = combination_problem(self.weights, self.maximize, self.constraints, self.penalty)
        if problem is not None:
            raise ModelError(problem[1])

    @property
    def dimensions(self) -> list[str]:
        """Every dimension the combination reads, in a stable order."""
        if self.weights:
            return list(self.weights)
        return [str(self.maximize), *self.constraints]

    def describe(self) -> str:
        """One line for reports, e.g. ``0.5·helpful + 0.5·harmless``."""
        if self.weights:
            total = sum(self.weights.values())
            return " + ".join(f"{w / total:g}·{d}" for d, w in self.weights.items())
        cons = ", ".join(f"{c} ≥ {t:g}" for c, t in self.constraints.items())
        return f"max {self.maximize}" + (f" s.t. {cons} (penalty {self.penalty:g})" if cons else "")


def combined_reward(settings: ObjectivesSettings) -> CombinedReward | None:
    """The combined reward ``[objectives]`` describes, or None when it sets none (checked when it was loaded)."""
    if not settings.combines():
        return None
    return CombinedReward(
        weights=dict(settings.weights),
        maximize=settings.maximize,
        constraints=dict(settings.constraints),
        penalty=settings.penalty,
    )


def combine_member_rewards(rewards: Mapping[str, np.ndarray], spec: CombinedReward) -> np.ndarray:
    """Combined reward R [n, K] from calibrated, centred member rewards ``rewards[d]`` [n, K]."""
    missing = [d for d in spec.dimensions if d not in rewards]
    if missing:
        raise ModelError(
            f"the combined reward reads {', '.join(missing)}, which this model has no head for; "
            f"its dimensions: {', '.join(rewards)}"
        )
    if spec.weights:
        total = float(sum(spec.weights.values()))
        return sum((w / total) * np.asarray(rewards[d], dtype=np.float64) for d, w in spec.weights.items())  # type: ignore[return-value]
    out = np.asarray(rewards[str(spec.maximize)], dtype=np.float64).copy()
    for dim, tau in spec.constraints.items():
        out -= spec.penalty * np.maximum(0.0, tau - np.asarray(rewards[dim], dtype=np.float64))
    return out


def combined_probabilities(
    rewards_a: Mapping[str, np.ndarray], rewards_b: Mapping[str, np.ndarray], spec: CombinedReward
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R(a) [n, K], R(b) [n, K], P_k(a≻b) = σ(R_k(a) − R_k(b)) [n, K])."""
    ra = combine_member_rewards(rewards_a, spec)
    rb = combine_member_rewards(rewards_b, spec)
    return ra, rb, 1.0 / (1.0 + np.exp(-(ra - rb)))
