"""The demo's shapes, shared by the run (``demo.py``) and its report (``demo_report.py``): its
simulated annotators, how big a run is, one arm's result, the held-out labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prefloop.config import LoopConfig
from prefloop.types import PairRecord

__all__ = ["ANNOTATORS", "ArmResult", "DemoSize", "held_out_labels"]

ANNOTATORS = [{"id": "alice", "accuracy": 0.95}, {"id": "bob", "accuracy": 0.85}, {"id": "carol", "accuracy": 0.75}]


@dataclass(frozen=True)
class DemoSize:
    """How big a demo run is: the full one (default) or ``--quick``."""

    max_pairs: int | None  # pairs taken from the data (None: all)
    test_size: int
    cycles: int
    queue: int
    milestone: int

    @classmethod
    def full(cls) -> DemoSize:
        return cls(max_pairs=None, test_size=600, cycles=10, queue=60, milestone=120)

    @classmethod
    def quick(cls) -> DemoSize:
        return cls(max_pairs=1000, test_size=500, cycles=6, queue=60, milestone=120)


@dataclass
class ArmResult:
    """One arm of the demo: its strategy, learning curve and final model's per-pair correctness."""

    strategy: str
    root: Path
    config: LoopConfig
    curve: list[dict[str, Any]] = field(default_factory=list)
    final_correct: np.ndarray | None = None
    final_model: str | None = None
    final_prediction: Any = None  # the final model's EnsemblePrediction of the held-out pairs


def held_out_labels(test: list[PairRecord]) -> list[str]:
    """The held-out labels ("a", "b", "tie"): every held-out pair has one (the demo reads labelled pairs)."""
    return [r.label.value for r in test if r.label is not None]
