"""``[backend]``: where annotators work. The one record every backend reads (``BackendSettings``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from prefloop.config.fields import Section, setting
from prefloop.redact import mask_url

__all__ = ["SECRET_ENV", "URL_ENV", "BackendSettings"]

#: environment variables that hold a backend's API key, by backend (the first one set wins;
#: ``PREFLOOP_BACKEND_API_KEY``, the generic name of ``[backend] api_key``, wins over both)
SECRET_ENV = {
    "label_studio": ("PREFLOOP_BACKEND_API_KEY", "LABEL_STUDIO_API_KEY"),
    "argilla": ("PREFLOOP_BACKEND_API_KEY", "ARGILLA_API_KEY"),
}
#: the same for the server URL
URL_ENV = {
    "label_studio": ("PREFLOOP_BACKEND_URL", "LABEL_STUDIO_URL"),
    "argilla": ("PREFLOOP_BACKEND_URL", "ARGILLA_API_URL"),
    "simulated": ("PREFLOOP_BACKEND_URL",),
}


@dataclass
class BackendSettings(Section):
    """Settings shared by every backend; each backend reads the fields it knows.

    Credentials arrive here from the environment (``config.load_config`` reads it; nothing else
    does) and are never printed: ``repr`` masks them.
    """

    SECTION: ClassVar[str] = "backend"

    name: str = setting(
        "simulated",
        "simulated | label_studio | argilla (checked against the backends' registry when a command starts)",
        flag="--backend",
    )
    project: str = setting("prefloop", "Label Studio project title / Argilla dataset name / simulator project")
    url: str | None = setting(
        None,
        "Server URL (simulated: a folder for its state); LABEL_STUDIO_URL or ARGILLA_API_URL in the "
        "environment also set it",
    )
    api_key: str | None = setting(
        None,
        "API key or token; keep it in the environment: LABEL_STUDIO_API_KEY, ARGILLA_API_KEY (or "
        "PREFLOOP_BACKEND_API_KEY for either)",
        secret=True,
    )
    template: str | None = setting(None, "Path to a custom label config / dataset settings template")
    dimensions: list[str] = setting(list, 'Extra per-dimension questions, e.g. ["helpful", "harmless"]')
    with_strength: bool = setting(True, "Ask for preference strength (rating)")
    with_rationale: bool = setting(True, "Ask for a free-text rationale")
    annotators_per_pair: int = setting(1, "Labels wanted per pair before its task counts as done", ge=1)
    show_predictions: bool = setting(False, "Show the model's guess to annotators (off: avoids anchoring bias)")
    randomize_order: bool = setting(
        True,
        "Show the two responses in a random order per task (undone when labels "
        "come back), so position bias averages out",
    )
    order_seed: int = setting(0, "Seed of that per-task order")
    batch_size: int = setting(500, "Tasks per push request and page size of a pull", ge=1)
    overlap_s: float = setting(
        5.0, "A pull re-reads this many seconds before its cursor on purpose (re-read labels are dropped)", ge=0
    )
    timeout_s: float = setting(30.0, "HTTP timeout per request", gt=0)
    deadline_s: float = setting(
        600.0,
        "Longest time one backend call may take, its retries and all its pages included (a whole pull, "
        "a project lookup); past it sync stops with exit 3 and frees the lock",
        gt=0,
    )
    retries: int = setting(
        3, "Retries on connection errors, timeouts, 429 and 502/503/504 before giving up (other errors: none)", ge=0
    )
    backoff_s: float = setting(0.5, "First retry delay; doubles on each retry", ge=0)
    max_backoff_s: float = setting(30.0, "Longest wait between two tries, a server's Retry-After included", ge=0)
    extra: dict[str, Any] = setting(dict, "Backend-specific settings (e.g. workspace, simulator oracle)")

    def __post_init__(self) -> None:
        if isinstance(self.name, str):
            self.name = self.name.replace("-", "_")
        super().__post_init__()

    def __repr__(self) -> str:  # never leak a key through a log line
        key = "***" if self.api_key else None
        return (
            f"BackendSettings(name={self.name!r}, project={self.project!r}, url={mask_url(self.url)!r}, api_key={key})"
        )
