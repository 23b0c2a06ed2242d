"""Configuration: ``prefloop.toml`` → typed dataclasses, with environment overrides for secrets.

Every knob is a documented field (``metadata["help"]``); ``prefloop config show``
and the README's configuration reference come from the same place.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from prefloop.errors import ConfigError

__all__ = [
    "SECRET_ENV",
    "AcquisitionSettings",
    "AnnotatorSettings",
    "BackendSection",
    "LoopConfig",
    "MilestoneSettings",
    "config_reference",
    "load_config",
    "masked",
]


def _f(default: Any, help: str, **kw: Any) -> Any:
    if callable(default) and not isinstance(default, str | int | float | bool):
        return field(default_factory=default, metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class BackendSection:
    """``[backend]``: where annotators work."""

    name: str = _f("simulated", "simulated | label_studio | argilla")
    project: str = _f("prefloop", "Label Studio project title / Argilla dataset name / simulator project")
    url: str | None = _f(None, "Server URL (simulated: a folder for its state). Env: PREFLOOP_BACKEND_URL")
    api_key: str | None = _f(None, "API key or token; prefer the environment (PREFLOOP_BACKEND_API_KEY, "
                                   "LABEL_STUDIO_API_KEY, ARGILLA_API_KEY)")
    template: str | None = _f(None, "Path to a custom label config / dataset settings template")
    dimensions: list[str] = _f(list, "Extra per-dimension questions, e.g. [\"helpful\", \"harmless\"]")
    with_strength: bool = _f(True, "Ask for preference strength (rating)")
    with_rationale: bool = _f(True, "Ask for a free-text rationale")
    annotators_per_pair: int = _f(1, "Labels wanted per pair before its task counts as done")
    show_predictions: bool = _f(False, "Show the model's guess to annotators (off: avoids anchoring bias)")
    timeout_s: float = _f(30.0, "HTTP timeout per request")
    retries: int = _f(3, "Retries on connection errors, timeouts and 5xx before giving up")
    backoff_s: float = _f(0.5, "First retry delay; doubles on each retry")
    extra: dict[str, Any] = _f(dict, "Backend-specific settings (e.g. workspace, simulator oracle)")


@dataclass
class AcquisitionSettings:
    """``[acquisition]``: which pairs go to annotators next."""

    strategy: str = _f("diverse:bald", "random | entropy | disagreement | bald | margin, or diverse:<inner>")
    queue_size: int = _f(50, "Pending tasks kept at the backend; each sync tops the queue up to this")
    max_per_prompt: int | None = _f(2, "At most this many pairs of one prompt in one batch")
    seed: int = _f(0, "Seed for random choices (cold start, tie-breaking)")
    refresh_after_retrain: bool = _f(False, "After a retrain, withdraw pending tasks an older model chose that the "
                                            "new one no longer ranks in its top queue_size, and refill with its "
                                            "picks. Only tasks without annotations go; a Label Studio draft on one "
                                            "is lost")


@dataclass
class MilestoneSettings:
    """``[milestone]``: when the reward model is retrained."""

    every: int = _f(50, "Retrain after this many new labels since the last model")
    min_labels: int = _f(20, "Labels needed before the first model is trained")
    min_interval_s: float = _f(0.0, "Do not retrain more often than this (seconds)")


@dataclass
class AnnotatorSettings:
    """``[annotators]``: gold checks and what training does with annotators who fail them."""

    gold_rate: float = _f(0.0, "Share of each top-up given to gold checks: pairs with a known answer "
                               "(`prefloop gold`), shown like any other task; 0 = off")
    gold_min_labels: int = _f(5, "Gold answers an annotator needs before their gold accuracy is judged")
    min_gold_accuracy: float = _f(0.7, "Annotators below this share of right gold answers fail the gold check")
    low_gold: str = _f("exclude", "Training with labels of annotators who fail the gold check: exclude | downweight "
                                  "(weight = their gold accuracy) | keep")
    redundancy: str = _f("fixed", "fixed: annotators_per_pair labels per task | adaptive: start from that and ask "
                                  "for one more label (up to max_annotators) only where the labels disagree or the "
                                  "model is unsure (simulated and Label Studio; Argilla has one distribution "
                                  "per dataset)")
    max_annotators: int = _f(3, "Adaptive redundancy: most labels one pair gets")
    uncertain_margin: float = _f(0.15, "Adaptive redundancy: the model is unsure when |P(a≻b) − 0.5| is below this")

    def __post_init__(self) -> None:
        if not 0.0 <= self.gold_rate < 1.0:
            raise ConfigError(f"[annotators] gold_rate must be in [0, 1), got {self.gold_rate}")
        if self.low_gold not in ("exclude", "downweight", "keep"):
            raise ConfigError(f"[annotators] low_gold must be exclude, downweight or keep, got {self.low_gold!r}")
        if self.redundancy not in ("fixed", "adaptive"):
            raise ConfigError(f"[annotators] redundancy must be fixed or adaptive, got {self.redundancy!r}")


@dataclass
class LoopConfig:
    """The whole ``prefloop.toml``."""

    db: str | None = _f(None, "Database URL or SQLite path. Env: PREFLOOP_DB_URL")
    backend: BackendSection = _f(BackendSection, "[backend]")
    acquisition: AcquisitionSettings = _f(AcquisitionSettings, "[acquisition]")
    milestone: MilestoneSettings = _f(MilestoneSettings, "[milestone]")
    annotators: AnnotatorSettings = _f(AnnotatorSettings, "[annotators]")
    model: dict[str, Any] = _f(dict, "[model]: any ModelConfig field (mode, backbone, k, max_length, ...)")
    lock_timeout_s: float = _f(0.0, "How long a second sync waits for the lock before exiting 'lock held'")
    artifacts_dir: str = _f("prefloop-artifacts", "Where model weights, caches and reports are written")
    source: str | None = field(default=None, metadata={"help": "file the config was read from"})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SECRET_ENV = {
    "label_studio": ("PREFLOOP_BACKEND_API_KEY", "LABEL_STUDIO_API_KEY"),
    "argilla": ("PREFLOOP_BACKEND_API_KEY", "ARGILLA_API_KEY"),
}
URL_ENV = {"label_studio": ("PREFLOOP_BACKEND_URL", "LABEL_STUDIO_URL"),
           "argilla": ("PREFLOOP_BACKEND_URL", "ARGILLA_API_URL"),
           "simulated": ("PREFLOOP_BACKEND_URL",)}


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        spec = known[name]
        default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
        if is_dataclass(default) and isinstance(value, dict):
            kwargs[name] = _build(type(default), value, f"{where}[{name}]")
            continue
        if default is not None and not isinstance(default, dict) and not isinstance(value, type(default)) \
                and not (isinstance(default, float) and isinstance(value, int)):
            raise ConfigError(f"{where}: {name} must be {type(default).__name__}, got {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | None = None, db: str | None = None) -> LoopConfig:
    """Read ``prefloop.toml`` (the given path, or ./prefloop.toml if present) and apply env overrides."""
    data: dict[str, Any] = {}
    source = None
    candidate = Path(path) if path else Path("prefloop.toml")
    if path and not candidate.exists():
        raise ConfigError(f"config file {path} not found")
    if candidate.exists():
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{candidate}: invalid TOML: {exc}") from None
        source = str(candidate)
    config: LoopConfig = _build(LoopConfig, data, str(candidate))
    config.source = source
    backend = config.backend.name.replace("-", "_")
    config.backend.name = backend
    for var in SECRET_ENV.get(backend, ()):
        if os.environ.get(var):
            config.backend.api_key = os.environ[var]
            break
    for var in URL_ENV.get(backend, ()):
        if os.environ.get(var):
            config.backend.url = os.environ[var]
            break
    config.db = db or os.environ.get("PREFLOOP_DB_URL") or config.db
    return config


def masked(config: LoopConfig) -> dict[str, Any]:
    """The effective config with secrets replaced by '***'."""
    data = config.to_dict()
    if data["backend"].get("api_key"):
        data["backend"]["api_key"] = "***"
    for key in list(data["backend"].get("extra", {})):
        if any(word in key.lower() for word in ("key", "token", "password", "secret")):
            data["backend"]["extra"][key] = "***"
    if data.get("db") and "@" in str(data["db"]) and ":" in str(data["db"]).split("@")[0].split("//")[-1]:
        head, tail = str(data["db"]).split("@", 1)
        data["db"] = head.rsplit(":", 1)[0] + ":***@" + tail
    return data


def config_reference() -> str:
    """Markdown reference of every setting, generated from the dataclasses."""
    lines = []
    for section, cls in (("", LoopConfig), ("[backend]", BackendSection), ("[acquisition]", AcquisitionSettings),
                         ("[milestone]", MilestoneSettings), ("[annotators]", AnnotatorSettings)):
        lines.append(f"\n**{section or 'top level'}**\n")
        for spec in fields(cls):
            if spec.name == "source" or (cls is LoopConfig and spec.name in ("backend", "acquisition", "milestone",
                                                                              "annotators")):
                continue
            default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
            lines.append(f"- `{spec.name}` (default `{default!r}`): {spec.metadata.get('help', '')}")
    return "\n".join(lines)
