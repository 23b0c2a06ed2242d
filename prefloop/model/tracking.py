"""Progress bars (rich) and metric logging (W&B when configured, else a local JSON)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefloop.config import ModelConfig

__all__ = ["MetricsLog", "log_audit", "progress_bar"]


class _NullBar:
    def add_task(self, description: str, total: float | None = None) -> int:
        return 0

    def update(self, task: int, advance: float = 1, **kwargs: Any) -> None:
        return None


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """A rich ``Progress`` (bar, counts, rate, time left) or a silent stand-in."""
    if not enabled:
        yield _NullBar()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cols = (
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}", markup=False),  # may name a strategy or a file
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    from rich.console import Console

    # stderr: stdout carries results (a model name, sync's JSON lines) that scripts read
    with Progress(*cols, transient=False, console=Console(stderr=True)) as bar:
        orig = bar.add_task

        def add_task(description: str, total: float | None = None, **kw: Any) -> Any:
            return orig(description, total=total, info=kw.pop("info", ""), **kw)

        bar.add_task = add_task  # type: ignore[method-assign,assignment]  # rich's, with an `info` default
        yield bar


class MetricsLog:
    """Step metrics to W&B (``config.wandb_project``; offline without an API key) and/or JSON.

    The JSON (``config.metrics_path``) holds every logged row plus the final summary.
    """

    def __init__(self, config: ModelConfig, enabled: bool = True) -> None:
        self.rows: list[dict[str, Any]] = []
        self.config = config
        self.enabled = enabled
        self.run: Any = None
        if enabled and config.wandb_project:
            import wandb

            # without a key (or an explicit WANDB_MODE) log offline; `wandb sync` uploads later
            mode: Any = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
            self.run = wandb.init(project=config.wandb_project, config=config.to_dict(), mode=mode, reinit="create_new")

    @property
    def active(self) -> bool:
        """Whether anything logged is kept (a W&B run or a metrics JSON): worth computing extra metrics for."""
        return self.run is not None or (self.enabled and bool(self.config.metrics_path))

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.run is not None:
            self.run.log(row)

    def finish(self, summary: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.summary.update({k: v for k, v in summary.items() if isinstance(v, int | float | str)})
            self.run.finish()
        if self.config.metrics_path:
            path = Path(self.config.metrics_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"summary": summary, "history": self.rows}, indent=2, default=str))


def log_audit(config: ModelConfig, model: str, shifts: dict[str, Any]) -> None:
    """A milestone audit's probe shifts: one W&B run (``audit/<probe>``) where ``config.wandb_project``
    is set, and an ``audit`` entry added to the metrics JSON (``config.metrics_path``) training wrote."""
    flat = {f"audit/{name}": value for name, value in shifts["shifts"].items()}
    flat.update({f"audit/flip_rate/{name}": value for name, value in shifts["flip_rates"].items()})
    flat["audit/r_length"] = shifts["r_length"]
    if config.wandb_project:
        log = MetricsLog(dataclasses.replace(config, metrics_path=None))
        if log.run is not None:
            log.run.name = f"{model}-audit"
        log.log({k: v for k, v in flat.items() if v is not None})
        log.finish({"model": model})
    if config.metrics_path:
        path = Path(config.metrics_path)
        data = json.loads(path.read_text()) if path.exists() else {}
        data["audit"] = {"model": model, **shifts}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, default=str))
