"""The one loader: defaults < ``prefloop.toml`` < environment < flags, every value checked once.

Each layer only gathers values by dotted key (``model.k``) and notes where each came from;
every section's record is then built once from what the layers gave, and its
``__post_init__`` checks the values — the same check whichever layer a value came from.
A refused value's message names the key, the allowed range and the source
(``[model]: k must be at least 1, got 0 (from flag -k/--members)``).

Environment: every setting is ``PREFLOOP_<SECTION>_<KEY>`` (``PREFLOOP_MODEL_K=3``;
top-level ones ``PREFLOOP_<KEY>``, ``PREFLOOP_DB_URL`` for ``db``), its value written as in
TOML (a string bare); the API key and URL also come from the variables the backends' own
tools document (``LABEL_STUDIO_API_KEY``, ``ARGILLA_API_KEY``, ...).
"""

from __future__ import annotations

import contextlib
import os
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import Field, fields
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from prefloop.config.backend import SECRET_ENV, URL_ENV
from prefloop.config.fields import SettingDeprecationWarning, SettingError, type_hints, unknown_keys
from prefloop.config.settings import SECTIONS, LoopConfig
from prefloop.errors import ConfigError
from prefloop.redact import register_secret

__all__ = [
    "CONFIG_ENV",
    "DB_ENV",
    "DEFAULT_CONFIG",
    "check_secrets",
    "config_path",
    "env_name",
    "env_value",
    "flag_name",
    "load_config",
    "setting_field",
]

CONFIG_ENV = "PREFLOOP_CONFIG"
DB_ENV = "PREFLOOP_DB_URL"
DEFAULT_CONFIG = "prefloop.toml"
_TOP = tuple(f.name for f in fields(LoopConfig) if "help" in f.metadata and f.name not in SECTIONS)

Values = dict[str, dict[str, Any]]  # section ("" = top level) → setting → value


def setting_field(key: str) -> Field[Any]:
    """The dataclass field of a dotted setting (``model.k``, ``db``); ``KeyError`` for none."""
    section, _, name = key.rpartition(".")
    owner = SECTIONS[section] if section else LoopConfig
    for spec in fields(owner):
        if spec.name == name and "help" in spec.metadata and (section or name in _TOP):
            return spec
    raise KeyError(key)


def env_name(key: str) -> str:
    """The environment variable of a dotted setting: ``model.k`` → ``PREFLOOP_MODEL_K``."""
    return DB_ENV if key == "db" else "PREFLOOP_" + key.replace(".", "_").upper()


def flag_name(key: str) -> str:
    """How a command line names a setting in messages (the field's ``flag``, else ``--key-name``)."""
    spec = setting_field(key)
    return str(spec.metadata.get("flag") or "--" + spec.name.replace("_", "-"))


def config_path(path: str | None = None) -> tuple[Path | None, str]:
    """Which file is read: ``--config``, else ``$PREFLOOP_CONFIG``, else ./prefloop.toml if present."""
    if path:
        return Path(path), "--config"
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]), CONFIG_ENV
    default = Path(DEFAULT_CONFIG)
    return (default, "current folder") if default.exists() else (None, "")


def _read(file: Path | None, how: str) -> dict[str, Any]:
    if file is None:
        return {}
    if not file.is_file():
        raise ConfigError(f"config file {file} not found (from {how})")
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None


def _known(section: str) -> dict[str, Field[Any]]:
    owner = SECTIONS[section] if section else LoopConfig
    return {f.name: f for f in fields(owner) if "help" in f.metadata and (section or f.name in _TOP)}


def _from_file(data: dict[str, Any], file: Path, values: Values, sources: dict[str, str]) -> None:
    """The file's values by section; unknown keys refused with the nearest known name."""
    origin = f"file {file}"
    unknown = set(data) - set(_TOP) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{file}: {unknown_keys('', unknown, [*_TOP, *SECTIONS])}")
    for key, value in data.items():
        if key in _TOP:
            values[""][key], sources[key] = value, origin
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: {key} must be a [{key}] table, got {value!r}")
        table = dict(value)
        if key == "model" and "aggregate" in table:
            _moved_aggregate(table.pop("aggregate"), file, data, values, sources)
        known = _known(key)
        unknown = set(table) - set(known)
        if unknown:
            raise ConfigError(f"{file}: {unknown_keys(key, unknown, known)}")
        for name, item in table.items():
            if known[name].metadata.get("env_only"):
                raise ConfigError(
                    f"{file}: [{key}] {name} is a secret read from the environment only: set "
                    f"{env_name(f'{key}.{name}')} and remove it from the file"
                )
            values[key][name], sources[f"{key}.{name}"] = item, origin


def _moved_aggregate(value: Any, file: Path, data: dict[str, Any], values: Values, sources: dict[str, str]) -> None:
    """``[model] aggregate`` is ``[annotators] aggregate`` now; the old place is still read, with a warning."""
    warnings.warn(
        f"{file}: [model] aggregate has moved to [annotators] aggregate; move the line there "
        "(the old place is still read, for now)",
        SettingDeprecationWarning,
        stacklevel=3,
    )
    if "aggregate" not in (data.get("annotators") or {}):
        values["annotators"]["aggregate"] = value
        sources["annotators.aggregate"] = f"file {file} ([model] aggregate)"


def _accepts_str(hint: Any) -> bool:
    if hint is str:
        return True
    if get_origin(hint) is Literal:
        return all(isinstance(v, str) for v in get_args(hint))
    if get_origin(hint) in (Union, UnionType):
        return any(_accepts_str(h) for h in get_args(hint) if h is not type(None))
    return False


def env_value(raw: str, hint: Any) -> Any:
    """An environment variable's text as a setting's value: as is for a text setting, else read as TOML."""
    if _accepts_str(hint):
        return raw
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw  # the setting's type check names it: "k must be int, got 'abc'"


def _from_env(environ: Mapping[str, str], backend: str, values: Values, sources: dict[str, str]) -> None:
    """``PREFLOOP_<SECTION>_<KEY>`` for every setting, and the variables the backends' tools document."""
    for alias_table, name in ((SECRET_ENV, "api_key"), (URL_ENV, "url")):
        for var in reversed(alias_table.get(backend, ())):  # the first one listed wins
            if environ.get(var):
                values["backend"][name], sources[f"backend.{name}"] = environ[var], f"env {var}"
    for section in ("", *SECTIONS):
        known = _known(section)
        prefix = f"PREFLOOP_{section.upper()}_" if section else "PREFLOOP_"
        if section:
            unknown = {
                var[len(prefix) :].lower(): var
                for var in environ
                if var.startswith(prefix) and var[len(prefix) :].lower() not in known
            }
            if unknown:
                problem = unknown_keys(section, unknown, known)
                raise ConfigError(f"environment variable {', '.join(sorted(unknown.values()))}: {problem}")
        hints = type_hints(SECTIONS[section] if section else LoopConfig)
        for name in known:
            key = f"{section}.{name}" if section else name
            var = env_name(key)
            if environ.get(var):  # an empty variable is unset, as a shell's `VAR= prefloop ...` means
                values[section][name] = env_value(environ[var], hints[name])
                sources[key] = f"env {var}"


def _backend_name(values: Values, environ: Mapping[str, str], overrides: Mapping[str, Any]) -> str:
    """The backend that will run (its variables are read even though a flag is applied after them)."""
    name = (
        overrides.get("backend.name")
        or environ.get(env_name("backend.name"))
        or values["backend"].get("name")
        or "simulated"
    )
    return str(name).replace("-", "_")


def _build(values: Values, sources: dict[str, str]) -> LoopConfig:
    """Each section's record built once from the gathered values; a refusal names the value's source."""
    artifacts = values[""].get("artifacts_dir", setting_field("artifacts_dir").default)
    if "cache_dir" not in values["model"]:
        values["model"]["cache_dir"] = str(Path(str(artifacts)) / "embedding-cache")
        sources["model.cache_dir"] = "default: under artifacts_dir"
    try:
        sections: dict[str, Any] = {name: cls(**values[name]) for name, cls in SECTIONS.items()}
        return LoopConfig(**values[""], **sections)
    except SettingError as exc:  # a ConfigError, as every configuration problem is, with its value's source
        source = sources.get(exc.key)
        raise ConfigError(str(exc) + (f" (from {source})" if source else "")) from None


def load_config(
    path: str | None = None,
    db: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    require_secrets: bool = False,
    flags: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoopConfig:
    """The effective configuration: flags > environment > ``prefloop.toml`` > defaults, checked now.

    ``path`` is ``--config``; ``db`` is ``--db``; ``overrides`` are other flags by dotted key
    (``{"model.k": 3}``), ``flags`` how the command line spelt them (``{"model.k": "-k"}``, for
    messages). Every key, type and range is checked here, so a typo fails in the first second;
    names that need another room's registry (backend, strategy) are checked by
    ``prefloop.loop.settings.check_config``. ``require_secrets`` also checks the API key the
    backend needs. ``config.sources`` says where each value came from.
    """
    overrides = dict(overrides or {})
    flags = dict(flags or {})
    environ = os.environ if environ is None else environ
    file, how = config_path(path)
    data = _read(file, how)
    values: Values = {"": {}, **{name: {} for name in SECTIONS}}
    sources: dict[str, str] = {}
    if file is not None:
        _from_file(data, file, values, sources)
    _from_env(environ, _backend_name(values, environ, overrides), values, sources)
    if db:
        overrides["db"] = db
    for key, value in overrides.items():
        spec = setting_field(key)  # a KeyError here is a bug in the caller, not a user's mistake
        section = key.rpartition(".")[0]
        values[section][spec.name] = value
        sources[key] = f"flag {flags.get(key) or flag_name(key)}"
    config = _build(values, sources)
    config.source = str(file) if file else None
    config.sources = sources
    _guard_secrets(config, sources)
    if require_secrets:
        check_secrets(config)
    return config


def _guard_secrets(config: LoopConfig, sources: Mapping[str, str]) -> None:
    """Register every secret for masking (``prefloop.redact``); warn about one written in a file,
    naming the environment variable that should hold it instead."""
    register_secret(config.backend.api_key)
    for url in (config.backend.url, config.db):
        if url and "@" in url:
            with contextlib.suppress(ValueError):  # not a URL urllib reads: redact()'s URL pattern masks it
                register_secret(urlsplit(url).password)
    source = sources.get("backend.api_key", "")
    if config.backend.api_key and source.startswith("file "):
        variable = SECRET_ENV.get(config.backend.name, ("PREFLOOP_BACKEND_API_KEY",))[-1]
        warnings.warn(
            f"{source[5:]}: [backend] api_key is a secret in a file others may read; set {variable} "
            "(or PREFLOOP_BACKEND_API_KEY) in the environment and remove api_key from the file",
            SecretInFileWarning,
            stacklevel=3,
        )


class SecretInFileWarning(SettingDeprecationWarning):
    """A secret was read from the configuration file (the CLI prints it as ``Warning: ...``)."""


def check_secrets(config: LoopConfig) -> None:
    """The API key a server backend needs, named by the variable the README documents."""
    name = config.backend.name
    if name in SECRET_ENV and not config.backend.api_key:
        documented = SECRET_ENV[name][-1]
        raise ConfigError(
            f"no API key for {name}: set {documented} (or PREFLOOP_BACKEND_API_KEY) in the "
            "environment, or api_key under [backend]"
        )
