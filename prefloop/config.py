"""Configuration: ``prefloop.toml`` → typed dataclasses, with environment overrides for secrets.

Every knob is a documented field (``metadata["help"]``); ``prefloop config show``
and the README's configuration reference come from the same place.
"""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from prefloop.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "SECRET_ENV",
    "AcquisitionSettings",
    "AnnotatorSettings",
    "BackendSection",
    "LoopConfig",
    "MilestoneSettings",
    "ObjectivesSettings",
    "backend_settings",
    "check_secrets",
    "config_path",
    "config_reference",
    "load_config",
    "masked",
    "model_config",
    "source_of",
]


def _f(default: Any, help: str, **bounds: Any) -> Any:
    """A documented field; ``bounds`` (ge, gt, le, lt) are checked when the file is loaded."""
    metadata = {"help": help, **bounds}
    if callable(default) and not isinstance(default, str | int | float | bool):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class BackendSection:
    """``[backend]``: where annotators work."""

    name: str = _f("simulated", "simulated | label_studio | argilla")
    project: str = _f("prefloop", "Label Studio project title / Argilla dataset name / simulator project")
    url: str | None = _f(None, "Server URL (simulated: a folder for its state). Env: PREFLOOP_BACKEND_URL")
    api_key: str | None = _f(
        None,
        "API key or token; prefer the environment (PREFLOOP_BACKEND_API_KEY, LABEL_STUDIO_API_KEY, ARGILLA_API_KEY)",
    )
    template: str | None = _f(None, "Path to a custom label config / dataset settings template")
    dimensions: list[str] = _f(list, 'Extra per-dimension questions, e.g. ["helpful", "harmless"]')
    with_strength: bool = _f(True, "Ask for preference strength (rating)")
    with_rationale: bool = _f(True, "Ask for a free-text rationale")
    annotators_per_pair: int = _f(1, "Labels wanted per pair before its task counts as done", ge=1)
    show_predictions: bool = _f(False, "Show the model's guess to annotators (off: avoids anchoring bias)")
    randomize_order: bool = _f(
        True,
        "Show the two responses in a random order per task (undone when labels "
        "come back), so position bias averages out",
    )
    order_seed: int = _f(0, "Seed of that per-task order")
    batch_size: int = _f(500, "Tasks per push request and page size of a pull", ge=1)
    overlap_s: float = _f(
        5.0, "A pull re-reads this many seconds before its cursor on purpose (re-read labels are dropped)", ge=0
    )
    timeout_s: float = _f(30.0, "HTTP timeout per request", gt=0)
    retries: int = _f(
        3, "Retries on connection errors, timeouts, 429 and 502/503/504 before giving up (other errors: none)", ge=0
    )
    backoff_s: float = _f(0.5, "First retry delay; doubles on each retry", ge=0)
    max_backoff_s: float = _f(30.0, "Longest wait between two tries, a server's Retry-After included", ge=0)
    extra: dict[str, Any] = _f(dict, "Backend-specific settings (e.g. workspace, simulator oracle)")


@dataclass
class AcquisitionSettings:
    """``[acquisition]``: which pairs go to annotators next."""

    strategy: str = _f(
        "noise_aware",
        "noise_aware (default: BALD that ranks likely ties and 50/50 human splits last; measured best on HH "
        "helpful, docs/benchmarks.md) | random | entropy | disagreement | bald | margin | epig | drts | "
        "delta_ucb | balpm[:<inner>] | diverse:<inner> | dimension_disagreement (pairs the heads of a "
        "multi-objective model prefer differently; needs [objectives] dimensions)",
    )
    queue_size: int = _f(50, "Pending tasks kept at the backend; each sync tops the queue up to this", ge=1)
    max_per_prompt: int | None = _f(2, "At most this many pairs of one prompt in one batch", ge=1)
    seed: int = _f(0, "Seed for random choices (cold start, tie-breaking)", ge=0)
    dimension: str | None = _f(
        None,
        'Score pairs by this dimension\'s head of a multi-objective model (e.g. "helpful"); unset = the '
        "model's reward: the [objectives] combination where configured, else its first dimension",
    )
    refresh_after_retrain: bool = _f(
        False,
        "After a retrain, withdraw pending tasks an older model chose that the "
        "new one no longer ranks in its top queue_size, and refill with its "
        "picks. Only tasks without annotations go; a Label Studio draft on one "
        "is lost",
    )


@dataclass
class MilestoneSettings:
    """``[milestone]``: when the reward model is retrained."""

    every: int = _f(50, "Retrain after this many new labels since the last model", ge=1)
    min_labels: int = _f(20, "Labels needed before the first model is trained", ge=1)
    min_interval_s: float = _f(0.0, "Do not retrain more often than this (seconds)", ge=0)


@dataclass
class AnnotatorSettings:
    """``[annotators]``: gold checks and what training does with annotators who fail them."""

    gold_rate: float = _f(
        0.0,
        "Share of each top-up given to gold checks: pairs with a known answer "
        "(`prefloop gold`), shown like any other task; 0 = off",
    )
    gold_min_labels: int = _f(5, "Gold answers an annotator needs before their gold accuracy is judged", ge=1)
    min_gold_accuracy: float = _f(
        0.7, "Annotators below this share of right gold answers fail the gold check", ge=0, le=1
    )
    low_gold: str = _f(
        "exclude",
        "Training with labels of annotators who fail the gold check: exclude | downweight "
        "(weight = their gold accuracy) | keep",
    )
    redundancy: str = _f(
        "fixed",
        "fixed: annotators_per_pair labels per task | adaptive: start from that and ask "
        "for one more label (up to max_annotators) only where the labels disagree or the "
        "model is unsure (simulated and Label Studio; Argilla has one distribution "
        "per dataset)",
    )
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
class ObjectivesSettings:
    """``[objectives]``: several dimensions in one model, and how they make one reward (README)."""

    dimensions: list[str] = _f(
        list,
        'Dimensions `train` and sync\'s retrains fit one head each for, e.g. ["helpful", "harmless"] '
        "(train --dimension overrides); empty = the overall dimension only",
    )
    weights: dict[str, float] = _f(
        dict,
        "Combined reward = Σ w_d·r_d / Σ w_d over the heads' calibrated, centred rewards, e.g. "
        "{ helpful = 1.0, harmless = 1.0 }",
    )
    maximize: str | None = _f(None, "Or: the dimension maximised subject to [objectives.constraints]")
    constraints: dict[str, float] = _f(
        dict,
        "Dimension → τ: each response should have reward ≥ τ on it (τ = logit of its odds against an "
        "average training response; 0 = even odds); a shortfall δ costs penalty·δ",
    )
    penalty: float = _f(10.0, "Reward lost per unit a constraint is missed by", gt=0)

    def __post_init__(self) -> None:
        for name in ("weights", "constraints"):
            table = getattr(self, name)
            bad = {k: v for k, v in table.items() if isinstance(v, bool) or not isinstance(v, int | float)}
            if bad:
                raise ConfigError(f"[objectives] {name}: values must be numbers, got {bad}")
        if len(set(self.dimensions)) != len(self.dimensions) or "combined" in self.dimensions:
            raise ConfigError(
                f"[objectives] dimensions must be distinct and not 'combined' (the combined reward's name), "
                f"got {self.dimensions}"
            )
        spec = self.combined()
        if spec is not None and self.dimensions:
            unknown = [d for d in spec.dimensions if d not in self.dimensions]
            if unknown:
                raise ConfigError(
                    f"[objectives] combines {', '.join(unknown)}, which is not in dimensions "
                    f"{self.dimensions}; add it there or fix the name"
                )

    def combined(self) -> Any:
        """The ``CombinedReward`` these settings describe, or None when no combination is set."""
        from prefloop.errors import ModelError
        from prefloop.objectives import CombinedReward

        if not (self.weights or self.maximize or self.constraints):
            return None
        try:
            return CombinedReward(
                weights=dict(self.weights),
                maximize=self.maximize,
                constraints=dict(self.constraints),
                penalty=self.penalty,
            )
        except ModelError as exc:
            raise ConfigError(f"[objectives]: {exc}") from None


@dataclass
class LoopConfig:
    """The whole ``prefloop.toml``."""

    db: str | None = _f(None, "Database URL or SQLite path. Env: PREFLOOP_DB_URL")
    backend: BackendSection = _f(BackendSection, "[backend]")
    acquisition: AcquisitionSettings = _f(AcquisitionSettings, "[acquisition]")
    milestone: MilestoneSettings = _f(MilestoneSettings, "[milestone]")
    annotators: AnnotatorSettings = _f(AnnotatorSettings, "[annotators]")
    objectives: ObjectivesSettings = _f(ObjectivesSettings, "[objectives]")
    model: dict[str, Any] = _f(dict, "[model]: any ModelConfig field (mode, backbone, k, max_length, ...)")
    lock_timeout_s: float = _f(0.0, "How long a second sync waits for the lock before exiting 'lock held'", ge=0)
    artifacts_dir: str = _f("prefloop-artifacts", "Where model weights, caches and reports are written")
    source: str | None = field(default=None, metadata={"help": "file the config was read from"})
    sources: dict[str, str] = field(
        default_factory=dict, repr=False, metadata={"help": "dotted setting → where its value came from"}
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def db_url(self) -> str:
        """The store's URL: ``db`` as set, else ``prefloop.db`` in the current folder."""
        from prefloop.store.db import DEFAULT_DB_URL, normalize_url

        return normalize_url(self.db or DEFAULT_DB_URL)


_INTERNAL = ("source", "sources")
_SECTIONS = ("backend", "acquisition", "milestone", "annotators", "objectives", "model")


SECRET_ENV = {
    "label_studio": ("PREFLOOP_BACKEND_API_KEY", "LABEL_STUDIO_API_KEY"),
    "argilla": ("PREFLOOP_BACKEND_API_KEY", "ARGILLA_API_KEY"),
}
URL_ENV = {
    "label_studio": ("PREFLOOP_BACKEND_URL", "LABEL_STUDIO_URL"),
    "argilla": ("PREFLOOP_BACKEND_URL", "ARGILLA_API_URL"),
    "simulated": ("PREFLOOP_BACKEND_URL",),
}
CONFIG_ENV = "PREFLOOP_CONFIG"
DB_ENV = "PREFLOOP_DB_URL"
DEFAULT_CONFIG = "prefloop.toml"
#: settings of ``[model]`` that are not ``ModelConfig`` fields (read by the loop, not the model)
MODEL_LOOP_KEYS = {"aggregate": ("none", "majority", "dawid-skene")}
# ranges of ``[model]`` fields (ModelConfig is edited with the model; the loop checks what users set)
_MODEL_RANGES: dict[str, dict[str, float]] = {
    "k": {"ge": 1},
    "max_length": {"ge": 8},
    "epochs": {"ge": 1},
    "head_epochs": {"ge": 1},
    "head_batch_size": {"ge": 1},
    "head_patience": {"ge": 1},
    "head_hidden": {"ge": 1},
    "batch_size": {"ge": 1},
    "embed_batch_size": {"ge": 1},
    "patience": {"ge": 1},
    "lora_r": {"ge": 1},
    "lora_alpha": {"ge": 1},
    "val_fraction": {"ge": 0, "lt": 1},
    "head_dropout": {"ge": 0, "lt": 1},
    "lr": {"gt": 0},
    "tie_lr": {"gt": 0},
    "weight_decay": {"ge": 0},
    "replay_fraction": {"ge": 0},
    "head_prior": {"ge": 0},
    "margin_scale": {"ge": 0},
    "debias_weight": {"ge": 0},
    "grad_clip": {"ge": 0},
    "threads": {"ge": 1},
    "seed": {"ge": 0},
}


def _type_name(hint: Any) -> str:
    if get_origin(hint) is Literal:
        return " | ".join(repr(v) for v in get_args(hint))
    if get_origin(hint) in (Union, UnionType):
        return " or ".join(_type_name(h) for h in get_args(hint))
    if hint is type(None):
        return "unset"
    return getattr(hint, "__name__", str(hint))


def _fits(value: Any, hint: Any) -> bool:
    """Whether a TOML value fits a type hint (ints are floats; bools are not ints)."""
    origin = get_origin(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return value in get_args(hint)
    if origin in (Union, UnionType):
        return any(_fits(value, h) for h in get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is list or hint is list:
        (item,) = get_args(hint) or (Any,)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _check_value(where: str, name: str, value: Any, hint: Any, bounds: dict[str, Any]) -> None:
    if not _fits(value, hint):
        raise ConfigError(f"{where}: {name} must be {_type_name(hint)}, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    for op, limit, ok in (
        ("ge", "at least", value >= bounds.get("ge", value)),
        ("gt", "above", value > bounds["gt"] if "gt" in bounds else True),
        ("le", "at most", value <= bounds.get("le", value)),
        ("lt", "below", value < bounds["lt"] if "lt" in bounds else True),
    ):
        if op in bounds and not ok:
            raise ConfigError(f"{where}: {name} must be {limit} {bounds[op]}, got {value!r}")


def _unknown(where: str, unknown: set[str], known: set[str]) -> ConfigError:
    hints = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return ConfigError(f"{where}: unknown setting(s) {', '.join(hints)}; known: {', '.join(sorted(known))}")


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls) if f.name not in _INTERNAL}
    unknown = set(data) - set(known)
    if unknown:
        raise _unknown(where, unknown, set(known))
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        spec = known[name]
        default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {name} must be a [{name}] table, got {value!r}")
            kwargs[name] = _build(type(default), value, f"[{name}]")
            continue
        _check_value(where, name, value, hints[name], dict(spec.metadata))
        kwargs[name] = value
    return cls(**kwargs)


def _check_model(model: dict[str, Any]) -> None:
    """``[model]``: every key a ``ModelConfig`` field (or a loop key), of its type and range."""
    if not model:
        return
    from prefloop.model.config import ModelConfig

    hints = get_type_hints(ModelConfig)
    known = set(hints) | set(MODEL_LOOP_KEYS)
    unknown = set(model) - known
    if unknown:
        raise _unknown("[model]", unknown, known)
    for name, value in model.items():
        if name in MODEL_LOOP_KEYS:
            if value not in MODEL_LOOP_KEYS[name]:
                raise ConfigError(
                    f"[model]: {name} must be {' | '.join(map(repr, MODEL_LOOP_KEYS[name]))}, got {value!r}"
                )
            continue
        _check_value("[model]", name, value, hints[name], _MODEL_RANGES.get(name, {}))


def _check_names(config: LoopConfig) -> None:
    """Backend and strategy names are parsed now, not at the first push."""
    from prefloop.acquisition import get_strategy
    from prefloop.backends import REGISTRY

    if config.backend.name not in REGISTRY:
        raise ConfigError(
            f"[backend]: name {config.backend.name!r} is not a backend; known: {', '.join(sorted(REGISTRY))}"
        )
    try:
        get_strategy(config.acquisition.strategy, max_per_prompt=config.acquisition.max_per_prompt)
    except (ValueError, TypeError) as exc:  # StrategyError, or a parameter the strategy does not take
        raise ConfigError(f"[acquisition]: strategy {config.acquisition.strategy!r}: {exc}") from None


def _check_objectives(config: LoopConfig) -> None:
    """Acquisition that reads several heads, or one by name, must agree with ``[objectives]``."""
    dims = config.objectives.dimensions
    if "dimension_disagreement" in config.acquisition.strategy.replace("-", "_") and len(dims) < 2:
        raise ConfigError(
            "[acquisition]: strategy dimension_disagreement needs a model with a head per dimension; "
            'set [objectives] dimensions = ["helpful", "harmless"] (two or more)'
        )
    wanted = config.acquisition.dimension
    if wanted is not None and dims and wanted not in (*dims, "combined"):
        raise ConfigError(
            f"[acquisition]: dimension {wanted!r} is not one of [objectives] dimensions {dims} (or 'combined')"
        )


def config_path(path: str | None = None) -> tuple[Path | None, str]:
    """Which file is read: ``--config``, else ``$PREFLOOP_CONFIG``, else ./prefloop.toml if present."""
    if path:
        return Path(path), "--config"
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]), CONFIG_ENV
    default = Path(DEFAULT_CONFIG)
    return (default, "current folder") if default.exists() else (None, "")


def load_config(
    path: str | None = None,
    db: str | None = None,
    overrides: dict[str, Any] | None = None,
    require_secrets: bool = False,
) -> LoopConfig:
    """The effective configuration: flags > environment > ``prefloop.toml`` > defaults, checked now.

    ``path`` is ``--config``; ``db`` is ``--db``; ``overrides`` are other flags as dotted keys
    (``{"backend.name": "argilla"}``). Every key, type, range and name is checked here, so a typo
    fails in the first second; ``require_secrets`` also checks the API key the backend needs
    (commands that talk to the backend). ``config.sources`` names where each value came from.
    """
    file, how = config_path(path)
    data: dict[str, Any] = {}
    if file is not None:
        if not file.is_file():
            raise ConfigError(f"config file {file} not found (from {how})")
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    where = str(file) if file else "configuration"
    config: LoopConfig = _build(LoopConfig, data, where)
    config.source = str(file) if file else None
    sources: dict[str, str] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            sources.update({f"{key}.{sub}": f"file {file}" for sub in value})
        else:
            sources[key] = f"file {file}"
    config.backend.name = config.backend.name.replace("-", "_")
    # the environment of the backend that will run: a --backend flag names it, even though
    # flags are applied after the environment (so a flag still wins over a variable)
    backend = str((overrides or {}).get("backend.name", config.backend.name)).replace("-", "_")
    for var in SECRET_ENV.get(backend, ()):
        if os.environ.get(var):
            config.backend.api_key, sources["backend.api_key"] = os.environ[var], f"env {var}"
            break
    for var in URL_ENV.get(backend, ()):
        if os.environ.get(var):
            config.backend.url, sources["backend.url"] = os.environ[var], f"env {var}"
            break
    if os.environ.get(DB_ENV):
        config.db, sources["db"] = os.environ[DB_ENV], f"env {DB_ENV}"
    flags = {**({"db": db} if db else {}), **(overrides or {})}
    for key, value in flags.items():
        section, _, name = key.rpartition(".")
        target = getattr(config, section) if section else config
        if isinstance(target, dict):
            target[name] = value
        else:
            setattr(target, name, value)
        sources[key] = f"flag --{name.replace('_', '-')}" if key != "backend.name" else "flag --backend"
    config.backend.name = config.backend.name.replace("-", "_")
    config.sources = sources
    _check_model(config.model)
    _check_names(config)
    _check_objectives(config)
    if require_secrets:
        check_secrets(config)
    return config


def check_secrets(config: LoopConfig) -> None:
    """The API key a server backend needs, named by the variable the README documents."""
    name = config.backend.name
    if name in SECRET_ENV and not config.backend.api_key:
        documented = SECRET_ENV[name][-1]
        raise ConfigError(
            f"no API key for {name}: set {documented} (or PREFLOOP_BACKEND_API_KEY) in the "
            "environment, or api_key under [backend]"
        )


def source_of(config: LoopConfig, key: str) -> str:
    """Where one dotted setting came from: 'flag --x', 'env VAR', 'file PATH' or 'default'."""
    return config.sources.get(key, "default")


def model_config(config: LoopConfig) -> Any:
    """The ``ModelConfig`` the loop trains with: ``[model]`` over the defaults, caches under artifacts_dir."""
    from prefloop.model import ModelConfig

    data = {k: v for k, v in config.model.items() if k not in MODEL_LOOP_KEYS}
    data.setdefault("cache_dir", str(Path(config.artifacts_dir) / "embedding-cache"))
    return ModelConfig.from_dict(data)


def backend_settings(config: LoopConfig) -> Any:
    """``[backend]`` as the ``BackendSettings`` every backend reads (the simulator's state under artifacts_dir)."""
    from prefloop.backends import BackendSettings

    # one record: every BackendSettings field is a [backend] setting of the same name (tests/test_config.py)
    values = {f.name: copy.deepcopy(getattr(config.backend, f.name)) for f in fields(BackendSettings)}
    if config.backend.name == "simulated" and not values["url"]:
        values["url"] = str(Path(config.artifacts_dir) / "simulated")
    return BackendSettings(**values)


def masked(config: LoopConfig) -> dict[str, Any]:
    """The effective config with secrets replaced by '***'."""
    data = config.to_dict()
    for key in _INTERNAL:
        data.pop(key, None)
    if data["backend"].get("api_key"):
        data["backend"]["api_key"] = "***"
    for key in list(data["backend"].get("extra", {})):
        if is_secret_name(key):
            data["backend"]["extra"][key] = "***"
    if data.get("db"):
        data["db"] = mask_url(str(data["db"]))
    return data


def is_secret_name(key: str) -> bool:
    return any(word in key.lower() for word in ("key", "token", "password", "secret"))


def mask_url(url: str) -> str:
    """``postgresql://user:pw@host/db`` → ``postgresql://user:***@host/db``."""
    if "@" in url and ":" in url.split("@")[0].split("//")[-1]:
        head, tail = url.split("@", 1)
        return head.rsplit(":", 1)[0] + ":***@" + tail
    return url


def config_reference() -> str:
    """Markdown reference of every setting, generated from the dataclasses."""
    lines = []
    for section, cls in (
        ("", LoopConfig),
        ("[backend]", BackendSection),
        ("[acquisition]", AcquisitionSettings),
        ("[milestone]", MilestoneSettings),
        ("[annotators]", AnnotatorSettings),
        ("[objectives]", ObjectivesSettings),
    ):
        lines.append(f"\n**{section or 'top level'}**\n")
        for spec in fields(cls):
            if spec.name in _INTERNAL or (
                cls is LoopConfig and spec.name in ("backend", "acquisition", "milestone", "annotators", "objectives")
            ):
                continue
            default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
            lines.append(f"- `{spec.name}` (default `{default!r}`): {spec.metadata.get('help', '')}")
    return "\n".join(lines)
