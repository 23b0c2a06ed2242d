"""The one check every setting gets: a documented field with bounds, checked in ``__post_init__``.

A settings record is a dataclass whose fields are made with :func:`setting`: the help text, the
bounds (``ge``, ``gt``, ``le``, ``lt``) and, for a ``Literal`` type, the allowed values live in
the field. ``check_fields`` (called from every record's ``__post_init__``) checks each value
against its type and bounds, so a flag, an environment variable, the TOML file and a Python
caller get the same check and the same message: ``[model]: k must be at least 1, got 0``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import MISSING, Field, field, fields
from types import UnionType
from typing import Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

from prefloop.errors import ConfigError

__all__ = [
    "SettingDeprecationWarning",
    "SettingError",
    "bounds_text",
    "check_fields",
    "default_of",
    "fits",
    "setting",
    "type_hints",
    "type_name",
    "unknown_keys",
]

_BOUNDS = ("ge", "gt", "le", "lt")


class SettingError(ConfigError):
    """One setting has a value it cannot take; ``section`` and ``name`` say which (the loader adds its source)."""

    def __init__(self, section: str, name: str, message: str) -> None:
        self.section, self.name, self.message = section, name, message
        super().__init__(f"{where(section)}: {message}")

    @property
    def key(self) -> str:
        """The dotted key (``model.k``; a top-level setting has no section)."""
        return f"{self.section}.{self.name}" if self.section else self.name


class SettingDeprecationWarning(FutureWarning):
    """A setting was read from a place it is leaving (the CLI prints these as ``Warning: ...``)."""


def where(section: str) -> str:
    """How messages name a section: ``[model]``, or ``top level`` for the file's own keys."""
    return f"[{section}]" if section else "top level"


def setting(
    default: Any,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    secret: bool = False,
    env_only: bool = False,
    flag: str | None = None,
) -> Any:
    """A documented field. ``default`` may be a factory (``list``, ``dict``, a dataclass).

    ``secret``: masked wherever settings are shown; ``env_only``: read from the environment only
    (the file refuses it); ``flag``: how a command line names it, for messages.
    """
    metadata: dict[str, Any] = {"help": help, "secret": secret, "env_only": env_only}
    metadata.update({k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None})
    if flag:
        metadata["flag"] = flag
    if callable(default) and not isinstance(default, str | int | float | bool):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


def default_of(spec: Field[Any]) -> Any:
    """A field's default value (a fresh one for a factory)."""
    if spec.default_factory is not MISSING:
        return spec.default_factory()
    return None if spec.default is MISSING else spec.default


_HINTS: dict[Any, dict[str, Any]] = {}


def type_hints(cls: Any) -> dict[str, Any]:
    """The resolved type hints of a settings class (kept: resolving them is slow)."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def type_name(hint: Any) -> str:
    """A type as a message says it: ``int``, ``str or unset``, ``'heads' | 'finetune'``."""
    if get_origin(hint) is Literal:
        return " | ".join(repr(v) for v in get_args(hint))
    if get_origin(hint) in (Union, UnionType):
        return " or ".join(type_name(h) for h in get_args(hint))
    if hint is type(None):
        return "unset"
    origin = get_origin(hint)
    if origin is not None:
        return getattr(origin, "__name__", str(hint))
    return getattr(hint, "__name__", str(hint))


def fits(value: Any, hint: Any) -> bool:
    """Whether a value fits a type hint (ints are floats; bools are not ints)."""
    origin = get_origin(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return any(value == v and type(value) is type(v) for v in get_args(hint))
    if origin in (Union, UnionType):
        return any(fits(value, h) for h in get_args(hint))
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
        return isinstance(value, list) and all(fits(v, item) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def bounds_text(metadata: Any) -> str:
    """The allowed range as a message says it: ``at least 1``, ``at least 0 and below 1``."""
    words = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}
    return " and ".join(f"{words[op]} {metadata[op]}" for op in _BOUNDS if op in metadata)


def _in_bounds(value: float, metadata: Any) -> bool:
    checks = {
        "ge": lambda limit: value >= limit,
        "gt": lambda limit: value > limit,
        "le": lambda limit: value <= limit,
        "lt": lambda limit: value < limit,
    }
    return all(checks[op](metadata[op]) for op in _BOUNDS if op in metadata)


def check_value(section: str, spec: Field[Any], value: Any, hint: Any) -> None:
    """One value against its field's type and bounds; a ``SettingError`` naming key and range."""
    if not fits(value, hint):
        raise SettingError(section, spec.name, f"{spec.name} must be {type_name(hint)}, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not _in_bounds(value, spec.metadata):
        raise SettingError(section, spec.name, f"{spec.name} must be {bounds_text(spec.metadata)}, got {value!r}")


def check_fields(record: Any, skip: Iterable[str] = ()) -> None:
    """Every field of a settings record against its type and bounds (call from ``__post_init__``)."""
    section: str = getattr(record, "SECTION", "")
    hints = type_hints(type(record))
    for spec in fields(record):
        if spec.name not in skip and "help" in spec.metadata:
            check_value(section, spec, getattr(record, spec.name), hints[spec.name])


def unknown_keys(section: str, unknown: Iterable[str], known: Iterable[str]) -> ConfigError:
    """Unknown setting names, each with the nearest known one (difflib)."""
    known = sorted(known)
    hints = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, known, n=1)
        hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return ConfigError(f"{where(section)}: unknown setting(s) {', '.join(hints)}; known: {', '.join(known)}")


class Section:
    """Mixin of every settings record: its ``[section]`` name and the check in ``__post_init__``."""

    SECTION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        check_fields(self)
