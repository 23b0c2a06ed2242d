"""``LoopConfig``: the whole ``prefloop.toml`` — its top-level keys and one record per section."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from prefloop.config.acquisition import AcquisitionSettings
from prefloop.config.backend import BackendSettings
from prefloop.config.dashboard import DashboardSettings
from prefloop.config.fields import Section, SettingError, setting
from prefloop.config.model import ModelConfig
from prefloop.config.sections import AnnotatorSettings, MilestoneSettings, ObjectivesSettings, ServeSettings

__all__ = ["DEFAULT_DB_URL", "SECTIONS", "LoopConfig", "backend_settings"]

#: the store when nothing names one: ``prefloop.db`` in the current folder
DEFAULT_DB_URL = "sqlite:///prefloop.db"

#: ``[section]`` name → its settings record, in the order files and references show them
SECTIONS: dict[str, type[Any]] = {
    "backend": BackendSettings,
    "acquisition": AcquisitionSettings,
    "milestone": MilestoneSettings,
    "annotators": AnnotatorSettings,
    "objectives": ObjectivesSettings,
    "model": ModelConfig,
    "serve": ServeSettings,
    "dashboard": DashboardSettings,
}


@dataclass
class LoopConfig(Section):
    """The whole ``prefloop.toml``: top-level keys, then one record per ``[section]``.

    Built by ``load_config`` (defaults < file < environment < flags) or directly in Python; either
    way every value is checked here and in each section's ``__post_init__``.
    """

    SECTION: ClassVar[str] = ""

    db: str | None = setting(None, "Database URL or SQLite path; unset: prefloop.db in the current folder", flag="--db")
    lock_timeout_s: float = setting(0.0, "How long a second sync waits for the lock before exiting 'lock held'", ge=0)
    artifacts_dir: str = setting("prefloop-artifacts", "Where model weights, caches and reports are written")
    backend: BackendSettings = setting(BackendSettings, "[backend]: where annotators work")
    acquisition: AcquisitionSettings = setting(AcquisitionSettings, "[acquisition]: which pairs go out next")
    milestone: MilestoneSettings = setting(MilestoneSettings, "[milestone]: when the model is retrained")
    annotators: AnnotatorSettings = setting(AnnotatorSettings, "[annotators]: gold checks and aggregation")
    objectives: ObjectivesSettings = setting(ObjectivesSettings, "[objectives]: several dimensions, one reward")
    model: ModelConfig = setting(ModelConfig, "[model]: the reward model and its training")
    serve: ServeSettings = setting(ServeSettings, "[serve]: the webhook receiver")
    dashboard: DashboardSettings = setting(DashboardSettings, "[dashboard]: the read-only page of the loop")
    source: str | None = field(default=None, metadata={"doc": "file the config was read from"})
    sources: dict[str, str] = field(
        default_factory=dict, repr=False, metadata={"doc": "dotted setting → where its value came from"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        dims = self.objectives.dimensions
        if "dimension_disagreement" in self.acquisition.strategy.replace("-", "_") and len(dims) < 2:
            raise SettingError(
                "acquisition",
                "strategy",
                "strategy dimension_disagreement needs a model with a head per dimension; "
                'set [objectives] dimensions = ["helpful", "harmless"] (two or more)',
            )
        wanted = self.acquisition.dimension
        if wanted is not None and dims and wanted not in (*dims, "combined"):
            raise SettingError(
                "acquisition",
                "dimension",
                f"dimension {wanted!r} is not one of [objectives] dimensions {dims} (or 'combined')",
            )

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain data (the internal ``source`` and ``sources`` left out)."""
        data = asdict(self)
        data.pop("source")
        data.pop("sources")
        return data

    def db_url(self) -> str:
        """The store: ``db`` as set, else ``prefloop.db`` in the current folder (``open_store`` normalises it)."""
        return self.db or DEFAULT_DB_URL

    def source_of(self, key: str) -> str:
        """Where one dotted setting came from: 'flag --x', 'env VAR', 'file PATH' or 'default'."""
        return self.sources.get(key, "default")


def backend_settings(config: LoopConfig) -> BackendSettings:
    """A copy of ``[backend]`` for one backend to run with (the simulator's state under artifacts_dir).

    A copy, so a backend that adjusts its settings (a dry run's scratch folder) leaves the
    configuration as it was.
    """
    settings = copy.deepcopy(config.backend)
    if settings.name == "simulated" and not settings.url:
        settings.url = str(Path(config.artifacts_dir) / "simulated")
    return settings
