"""``prefloop config show`` and ``config init``: the configuration as TOML a person reads.

``show`` prints every setting in effect with where it came from (a flag, the environment,
the file, or the default), secrets masked; ``init`` writes a starter file in which every
setting is present, commented out at its default, under its help text.
"""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, fields
from typing import Any

from prefloop.config import (
    SECRET_ENV,
    AcquisitionSettings,
    AnnotatorSettings,
    BackendSection,
    LoopConfig,
    MilestoneSettings,
    ObjectivesSettings,
    is_secret_name,
    mask_url,
    source_of,
)

__all__ = ["render_config", "starter_config"]

_SECTIONS: tuple[tuple[str, type], ...] = (
    ("backend", BackendSection),
    ("acquisition", AcquisitionSettings),
    ("milestone", MilestoneSettings),
    ("annotators", AnnotatorSettings),
    ("objectives", ObjectivesSettings),
)
_TOP = ("db", "artifacts_dir", "lock_timeout_s")
#: [model] fields a starter file shows (the rest are in prefloop/model/config.py)
_STARTER_MODEL = ("mode", "backbone", "k", "max_length", "epochs", "batch_size", "wandb_project")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: Any) -> str:
    """One TOML value (strings as basic strings; JSON's escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = [f"{k if _BARE_KEY.match(str(k)) else json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    return json.dumps(str(value))


def _line(name: str, value: Any, source: str) -> str:
    if value is None:
        return f"# {name} is not set  ({source})"
    return f"{name} = {toml_value(value)}  # {source}"


def _masked_extra(extra: dict[str, Any]) -> dict[str, Any]:
    return {k: "***" if is_secret_name(str(k)) and v else v for k, v in extra.items()}


def render_config(config: LoopConfig) -> str:
    """The effective configuration as TOML, each value followed by its source; secrets masked."""
    from prefloop.config import model_config

    out = [
        "# prefloop configuration in effect" + (f" (file: {config.source})" if config.source else " (no file)"),
        "# each value is followed by where it came from: flag, env, file or default",
    ]
    shown_db = mask_url(config.db) if config.db else None
    out.append(
        _line("db", shown_db, source_of(config, "db"))
        if shown_db
        else f"# db is not set: the store is {config.db_url()}  (default)"
    )
    for name in _TOP[1:]:
        out.append(_line(name, getattr(config, name), source_of(config, name)))
    for section, cls in _SECTIONS:
        out.append(f"\n[{section}]")
        values = getattr(config, section)
        for spec in fields(cls):
            value = getattr(values, spec.name)
            if spec.name == "api_key" and value:
                value = "***"
            elif spec.name == "api_key" and config.backend.name in SECRET_ENV:
                out.append(
                    f"# api_key is not set: sync needs {SECRET_ENV[config.backend.name][-1]} "
                    "(or PREFLOOP_BACKEND_API_KEY) in the environment"
                )
                continue
            elif spec.name == "extra":
                value = _masked_extra(value)
            out.append(_line(spec.name, value, source_of(config, f"{section}.{spec.name}")))
    out.append("\n[model]")
    effective = model_config(config).to_dict()
    for name, value in config.model.items():
        if name not in effective:
            out.append(_line(name, value, source_of(config, f"model.{name}")))
    for name, value in effective.items():
        source = source_of(config, f"model.{name}")
        if name == "cache_dir" and name not in config.model:
            source = "default: under artifacts_dir"
        out.append(_line(name, value, source))
    return "\n".join(out) + "\n"


def _commented(name: str, default: Any, help: str) -> list[str]:
    shown = f"# {name} = {toml_value(default)}" if default is not None else f'# {name} = ""   (unset by default)'
    return [f"# {help}", shown]


def starter_config() -> str:
    """A commented ``prefloop.toml``: every setting at its default, commented out, under its help."""
    from prefloop.model.config import ModelConfig

    out = [
        "# prefloop.toml: settings for every prefloop command (flags and the environment override them).",
        "# Every line below is commented out at its default; uncomment and edit what you need.",
        "# `prefloop config show` prints what is in effect and where each value came from.",
        "# Secrets stay in the environment: LABEL_STUDIO_API_KEY, ARGILLA_API_KEY (or PREFLOOP_BACKEND_API_KEY).",
        "",
    ]
    for spec in fields(LoopConfig):
        if spec.name in _TOP:
            default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
            out += [*_commented(spec.name, default, spec.metadata["help"]), ""]
    for section, cls in _SECTIONS:
        out.append(f"[{section}]")
        for spec in fields(cls):
            if spec.name == "api_key":
                continue
            default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
            out += _commented(spec.name, default, spec.metadata["help"])
        out.append("")
    out.append("[model]  # any field of ModelConfig (prefloop/model/config.py); the most used ones:")
    defaults = ModelConfig()
    helps = ModelConfig.help()
    for name in _STARTER_MODEL:
        out += _commented(name, getattr(defaults, name), helps[name])
    out += _commented("aggregate", "none", "Several labels on a pair when sync retrains: none | majority | dawid-skene")
    return "\n".join(out) + "\n"
