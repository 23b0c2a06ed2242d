"""``[milestone]``, ``[annotators]``, ``[objectives]`` and ``[serve]``: the loop's smaller sections."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from prefloop.config.fields import Section, SettingError, setting

__all__ = [
    "AnnotatorSettings",
    "MilestoneSettings",
    "ObjectivesSettings",
    "ServeSettings",
    "combination_problem",
]


@dataclass
class MilestoneSettings(Section):
    """``[milestone]``: when the reward model is retrained."""

    SECTION: ClassVar[str] = "milestone"

    every: int = setting(50, "Retrain after this many new labels since the last model", ge=1)
    min_labels: int = setting(20, "Labels needed before the first model is trained", ge=1)
    min_interval_s: float = setting(0.0, "Do not retrain more often than this (seconds)", ge=0)
    audit_pairs: int = setting(
        0,
        "After each retrain, audit the new model (`prefloop audit`'s probes) on this many labelled "
        "pairs and store the probe shifts with its version; 0 = off",
        ge=0,
    )


@dataclass
class AnnotatorSettings(Section):
    """``[annotators]``: gold checks, label aggregation and what training does with annotators who fail."""

    SECTION: ClassVar[str] = "annotators"

    gold_rate: float = setting(
        0.0,
        "Share of each top-up given to gold checks: pairs with a known answer "
        "(`prefloop gold`), shown like any other task; 0 = off",
        ge=0,
        lt=1,
    )
    gold_min_labels: int = setting(5, "Gold answers an annotator needs before their gold accuracy is judged", ge=1)
    min_gold_accuracy: float = setting(
        0.7, "Annotators below this share of right gold answers fail the gold check", ge=0, le=1
    )
    low_gold: Literal["exclude", "downweight", "keep"] = setting(
        "exclude",
        "Training with labels of annotators who fail the gold check: exclude | downweight "
        "(weight = their gold accuracy) | keep",
    )
    redundancy: Literal["fixed", "adaptive"] = setting(
        "fixed",
        "fixed: annotators_per_pair labels per task | adaptive: start from that and ask "
        "for one more label (up to max_annotators) only where the labels disagree or the "
        "model is unsure (simulated and Label Studio; Argilla has one distribution "
        "per dataset)",
    )
    max_annotators: int = setting(3, "Adaptive redundancy: most labels one pair gets", ge=1)
    uncertain_margin: float = setting(
        0.15, "Adaptive redundancy: the model is unsure when |P(a≻b) − 0.5| is below this", ge=0, le=0.5
    )
    aggregate: Literal["none", "majority", "dawid-skene"] = setting(
        "none",
        "Several labels on a pair when train and sync's retrains make training data: none = each label "
        "counts (soft target by counts), majority = the majority choice, dawid-skene = the Dawid-Skene "
        "posterior as a soft target (was [model] aggregate)",
        flag="--aggregate",
    )


def combination_problem(
    weights: Mapping[str, float], maximize: str | None, constraints: Mapping[str, float], penalty: float
) -> tuple[str, str] | None:
    """What is wrong with a combined reward's description, as (setting, message); None when it is sound.

    The one check behind ``[objectives]`` and ``prefloop.objectives.CombinedReward``.
    """
    if bool(weights) == bool(maximize):
        return "weights", "a combined reward takes either weights or maximize (+ constraints), not both or neither"
    if constraints and not maximize:
        return "constraints", "constraints need maximize: the objective maximised subject to them"
    if any(w < 0 for w in weights.values()) or (weights and sum(weights.values()) <= 0):
        return "weights", f"weights must be ≥ 0 with a positive sum, got {dict(weights)}"
    if maximize in constraints:
        return "maximize", f"{maximize!r} is both maximised and constrained; constrain other dimensions"
    if penalty <= 0:
        return "penalty", f"penalty must be > 0, got {penalty}"
    return None


@dataclass
class ObjectivesSettings(Section):
    """``[objectives]``: several dimensions in one model, and how they make one reward (README)."""

    SECTION: ClassVar[str] = "objectives"

    dimensions: list[str] = setting(
        list,
        'Dimensions `train` and sync\'s retrains fit one head each for, e.g. ["helpful", "harmless"] '
        "(train --dimension overrides); empty = the overall dimension only",
    )
    weights: dict[str, float] = setting(
        dict,
        "Combined reward = Σ w_d·r_d / Σ w_d over the heads' calibrated, centred rewards, e.g. "
        "{ helpful = 1.0, harmless = 1.0 }",
    )
    maximize: str | None = setting(None, "Or: the dimension maximised subject to [objectives.constraints]")
    constraints: dict[str, float] = setting(
        dict,
        "Dimension → τ: each response should have reward ≥ τ on it (τ = logit of its odds against an "
        "average training response; 0 = even odds); a shortfall δ costs penalty·δ",
    )
    penalty: float = setting(10.0, "Reward lost per unit a constraint is missed by", gt=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("weights", "constraints"):
            table = getattr(self, name)
            bad = {k: v for k, v in table.items() if isinstance(v, bool) or not isinstance(v, int | float)}
            if bad:
                raise SettingError(self.SECTION, name, f"{name}: values must be numbers, got {bad}")
        if len(set(self.dimensions)) != len(self.dimensions) or "combined" in self.dimensions:
            raise SettingError(
                self.SECTION,
                "dimensions",
                f"dimensions must be distinct and not 'combined' (the combined reward's name), got {self.dimensions}",
            )
        if not self.combines():
            return
        problem = combination_problem(self.weights, self.maximize, self.constraints, self.penalty)
        if problem is not None:
            raise SettingError(self.SECTION, *problem)
        read = list(self.weights) if self.weights else [str(self.maximize), *self.constraints]
        unknown = [d for d in read if d not in self.dimensions]
        if self.dimensions and unknown:
            raise SettingError(
                self.SECTION,
                "weights" if self.weights else "maximize",
                f"combines {', '.join(unknown)}, which is not in dimensions {self.dimensions}; "
                "add it there or fix the name",
            )

    def combines(self) -> bool:
        """Whether a combined reward is configured (weights, or maximize / constraints)."""
        return bool(self.weights or self.maximize or self.constraints)


@dataclass
class ServeSettings(Section):
    """``[serve]``: ``prefloop serve``, the webhook receiver. Its secrets come from the environment only."""

    SECTION: ClassVar[str] = "serve"

    host: str = setting("127.0.0.1", "Address to listen on (127.0.0.1: this machine only)", flag="--host")
    port: int = setting(8765, "TCP port to listen on (0: any free port)", ge=0, le=65535, flag="--port")
    body_limit: int = setting(10_485_760, "Largest request body accepted, in bytes (larger: HTTP 413)", ge=1)
    public_url: str | None = setting(
        None, "URL at which the annotation servers reach this receiver; set, webhooks are registered there"
    )
    debounce_s: float = setting(
        2.0,
        "After labels arrive, wait this long for more before the worker rescores, retrains at a milestone "
        "and tops the queue up (seconds)",
        ge=0,
    )
    max_delay_s: float = setting(
        30.0, "Run that follow-up at the latest this long after the first label waiting for it (seconds)", ge=0
    )
    ls_secret: str | None = setting(
        None,
        "The secret Label Studio sends with each webhook (Authorization: Bearer or X-Prefloop-Token). "
        "Environment only, never in the file",
        secret=True,
        env_only=True,
    )
    argilla_secrets: str | None = setting(
        None,
        "Comma-separated whsec_... secrets that sign Argilla's webhooks (several during a rotation). "
        "Environment only, never in the file",
        secret=True,
        env_only=True,
    )

    def __repr__(self) -> str:  # the secrets never reach a log line
        return f"ServeSettings(host={self.host!r}, port={self.port!r}, public_url={self.public_url!r})"
