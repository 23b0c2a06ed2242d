"""The configuration as people read it: ``config show``, ``config init``, ``--json`` and the README reference.

``render_config`` prints every setting in effect with where it came from (a flag, the
environment, the file, or the default), secrets masked; ``starter_config`` writes a file in
which every setting is present, commented out at its default, under its help text;
``config_reference`` is the README's reference, generated from the same fields.
"""

from __future__ import annotations

import json
import re
from dataclasses import Field, fields
from typing import Any

from prefloop.config.backend import SECRET_ENV
from prefloop.config.fields import bounds_text, default_of, type_hints, type_name
from prefloop.config.load import env_name
from prefloop.config.settings import SECTIONS, LoopConfig

__all__ = [
    "config_reference",
    "is_secret_name",
    "mask_url",
    "masked",
    "render_config",
    "starter_config",
    "toml_value",
]

_TOP = ("db", "artifacts_dir", "lock_timeout_s")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def is_secret_name(key: str) -> bool:
    """Whether a free-form key (``[backend] extra``) names a secret: key, token, password, secret."""
    return any(word in key.lower() for word in ("key", "token", "password", "secret"))


def mask_url(url: str) -> str:
    """``postgresql://user:pw@host/db`` → ``postgresql://user:***@host/db``."""
    if "@" in url and ":" in url.split("@")[0].split("//")[-1]:
        head, tail = url.split("@", 1)
        return head.rsplit(":", 1)[0] + ":***@" + tail
    return url


def _settings(section: str) -> list[Field[Any]]:
    """The documented fields of a section (the top level: its own keys, not the sections)."""
    if section:
        return [f for f in fields(SECTIONS[section]) if "help" in f.metadata]
    return [f for f in fields(LoopConfig) if f.name in _TOP]


def masked(config: LoopConfig) -> dict[str, Any]:
    """The effective config as plain data with every secret replaced by '***'."""
    data = config.to_dict()
    for section in SECTIONS:
        for spec in _settings(section):
            if spec.metadata.get("secret") and data[section].get(spec.name):
                data[section][spec.name] = "***"
    data["backend"]["extra"] = _masked_extra(data["backend"]["extra"])
    if data.get("db"):
        data["db"] = mask_url(str(data["db"]))
    return data


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


def _secret_line(config: LoopConfig, section: str, spec: Field[Any], value: Any) -> str:
    key = f"{section}.{spec.name}"
    if value:
        return _line(spec.name, "***", config.source_of(key))
    if key == "backend.api_key" and config.backend.name in SECRET_ENV:
        return (
            f"# api_key is not set: sync needs {SECRET_ENV[config.backend.name][-1]} "
            "(or PREFLOOP_BACKEND_API_KEY) in the environment"
        )
    return f"# {spec.name} is not set  (env {env_name(key)})"


def render_config(config: LoopConfig) -> str:
    """The effective configuration as TOML, each value followed by its source; secrets masked."""
    out = [
        "# prefloop configuration in effect" + (f" (file: {config.source})" if config.source else " (no file)"),
        "# each value is followed by where it came from: flag, env, file or default",
    ]
    shown_db = mask_url(config.db) if config.db else None
    out.append(
        _line("db", shown_db, config.source_of("db"))
        if shown_db
        else f"# db is not set: the store is {config.db_url()}  (default)"
    )
    for name in _TOP[1:]:
        out.append(_line(name, getattr(config, name), config.source_of(name)))
    for section in SECTIONS:
        out.append(f"\n[{section}]")
        values = getattr(config, section)
        for spec in _settings(section):
            value = getattr(values, spec.name)
            if spec.metadata.get("secret"):
                out.append(_secret_line(config, section, spec, value))
                continue
            if spec.name == "extra":
                value = _masked_extra(value)
            out.append(_line(spec.name, value, config.source_of(f"{section}.{spec.name}")))
    return "\n".join(out) + "\n"


def _commented(section: str, spec: Field[Any]) -> list[str]:
    default = default_of(spec)
    if default is not None:
        shown = f"# {spec.name} = {toml_value(default)}"
    else:
        hint = type_hints(SECTIONS[section] if section else LoopConfig)[spec.name]
        shown = f"# {spec.name} =    (unset by default; {type_name(hint).removesuffix(' or unset')})"
    return [f"# {spec.metadata['help']}", shown]


def starter_config() -> str:
    """A commented ``prefloop.toml``: every setting at its default, commented out, under its help."""
    out = [
        "# prefloop.toml: settings for every prefloop command (flags and the environment override them).",
        "# Every line below is commented out at its default; uncomment and edit what you need.",
        "# `prefloop config show` prints what is in effect and where each value came from.",
        "# Secrets stay in the environment: LABEL_STUDIO_API_KEY, ARGILLA_API_KEY (or PREFLOOP_BACKEND_API_KEY).",
        "# Any setting can also come from PREFLOOP_<SECTION>_<KEY>, e.g. PREFLOOP_MODEL_K=3.",
        "",
    ]
    for spec in _settings(""):
        out += [*_commented("", spec), ""]
    for section in SECTIONS:
        out.append(f"[{section}]")
        for spec in _settings(section):
            if not spec.metadata.get("secret"):
                out += _commented(section, spec)
        out.append("")
    return "\n".join(out)


def _reference_line(section: str, spec: Field[Any]) -> str:
    allowed = bounds_text(spec.metadata)
    key = f"{section}.{spec.name}" if section else spec.name
    extras = [f"default `{default_of(spec)!r}`"]
    if allowed:
        extras.append(allowed)
    extras.append(f"env `{env_name(key)}`")
    return f"- `{spec.name}` ({'; '.join(extras)}): {spec.metadata.get('help', '')}"


def config_reference() -> str:
    """Markdown reference of every setting, generated from the dataclasses (the README's)."""
    lines = []
    for section in ("", *SECTIONS):
        lines.append(f"\n**{f'[{section}]' if section else 'top level'}**\n")
        lines += [_reference_line(section, spec) for spec in _settings(section)]
    return "\n".join(lines)
