"""What a sync cycle reports step by step, and whether a retrain is due: shared by the real cycle
(``sync.py``) and the dry run (``sync_dry_run.py``), which import it and not each other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from prefloop.config import LoopConfig
from prefloop.store.versions import Milestone, milestone_due

__all__ = ["SyncReport", "milestone"]


@dataclass
class SyncReport:
    steps: list[dict[str, Any]] = field(default_factory=list)
    changed: bool = False
    model: str | None = None

    def step(self, name: str, started: float, **data: Any) -> dict[str, Any]:
        entry = {"step": name, "seconds": round(time.perf_counter() - started, 3), **data}
        self.steps.append(entry)
        return entry


def milestone(session: Session, config: LoopConfig) -> Milestone:
    """Whether the labels in the store call for a retrain under ``[milestone]``."""
    m = config.milestone
    return milestone_due(session, every=m.every, min_labels=m.min_labels, min_interval_s=m.min_interval_s)
