"""The checks of a configuration that need another room's registry, run once when a command starts.

``prefloop.config`` checks every key, type and range but knows no backend or strategy (it
imports nothing above it); here the backend name is looked up in the backends' registry and
the acquisition strategy, with its ``[acquisition]`` parameters, is built once through the
strategies' registry, so a typo fails in the first second, not at the first push.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from prefloop.acquisition import configured_strategy
from prefloop.backends import REGISTRY
from prefloop.config import LoopConfig, load_config
from prefloop.errors import ConfigError, StrategyError

__all__ = ["check_config", "load_settings"]


def _refused(config: LoopConfig, section: str, name: str, message: str) -> ConfigError:
    source = config.sources.get(f"{section}.{name}")
    return ConfigError(f"[{section}]: {message}" + (f" (from {source})" if source else ""))


def check_config(config: LoopConfig) -> LoopConfig:
    """``config`` when its backend and strategy exist and the strategy takes its parameters; else a ``ConfigError``."""
    name = config.backend.name
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, sorted(REGISTRY), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise _refused(
            config, "backend", "name", f"name {name!r} is not a backend{hint}; known: {', '.join(sorted(REGISTRY))}"
        )
    acquisition = config.acquisition
    try:
        configured_strategy(acquisition.strategy, acquisition.strategy_params(), acquisition.max_per_prompt)
    except (StrategyError, TypeError) as exc:  # TypeError: a parameter a strategy's constructor does not take
        raise _refused(config, "acquisition", "strategy", f"strategy {acquisition.strategy!r}: {exc}") from None
    return config


def load_settings(
    path: str | None = None,
    db: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    require_secrets: bool = False,
    flags: Mapping[str, str] | None = None,
) -> LoopConfig:
    """``prefloop.config.load_config`` (defaults < file < environment < flags), then ``check_config``."""
    return check_config(load_config(path, db, overrides, require_secrets=require_secrets, flags=flags))
