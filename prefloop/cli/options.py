"""Options shared by several commands: settings as flags (made from their fields), and how to read a file.

``setting_option("model.k", "-k", "--members")`` makes a flag whose help, metavar and range
come from the ``[model] k`` field; its value is applied by the one loader as a flag (defaults <
file < environment < flags) and checked there, so ``-k -3`` is refused with the same message as
``k = -3`` in prefloop.toml, naming the flag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import click

from prefloop.config import SECTIONS, LoopConfig, setting_field
from prefloop.config.fields import bounds_text, default_of, type_hints
from prefloop.config.load import env_name, env_value
from prefloop.data.readers import FORMATS

__all__ = [
    "FLAGS",
    "SettingOption",
    "format_names",
    "known_encoding",
    "reading",
    "reading_options",
    "setting_help",
    "setting_keys",
    "setting_option",
]


#: where the setting options of a command leave their values (``ctx.meta`` is shared by the chain)
FLAGS = "prefloop.setting_flags"


def _hint(key: str) -> Any:
    section, _, name = key.rpartition(".")
    return type_hints(SECTIONS[section] if section else LoopConfig)[name]


def _metavar(hint: Any) -> str:
    if get_origin(hint) in (Union, UnionType):
        return _metavar(next(h for h in get_args(hint) if h is not type(None)))
    if get_origin(hint) is Literal:
        return "[" + "|".join(str(v) for v in get_args(hint)) + "]"
    return {int: "INTEGER", float: "NUMBER"}.get(hint, "TEXT")


def setting_help(key: str) -> str:
    """A setting's help as a flag shows it: the field's help, its range, default, file key and variable."""
    spec = setting_field(key)
    section, _, name = key.rpartition(".")
    allowed = bounds_text(spec.metadata)
    where = f"[{section}] {name}" if section else name
    return (
        f"{spec.metadata['help']} ({allowed + '; ' if allowed else ''}default {default_of(spec)!r}; "
        f"prefloop.toml {where}; env {env_name(key)})"
    )


class SettingOption(click.Option):
    """A flag that sets one setting: its value goes to the loader, not to the command function."""

    def __init__(self, decls: list[str], *, key: str, **kwargs: Any) -> None:
        self.setting_key = key
        super().__init__(decls, expose_value=False, callback=self._keep, **kwargs)

    def _keep(self, ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        if self.is_flag:
            flag = self.opts[0] if value else self.secondary_opts[0]
        else:
            flag, value = "/".join(self.opts), env_value(value, _hint(self.setting_key))
        ctx.meta.setdefault(FLAGS, {})[self.setting_key] = (value, flag)
        return value


def setting_option(key: str, *decls: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A click option for the setting ``key`` (``"model.k"``), named ``decls`` (default ``--k``)."""
    spec = setting_field(key)
    hint = _hint(key)
    names = list(decls) or [str(spec.metadata.get("flag") or "--" + spec.name.replace("_", "-"))]
    if hint is bool:
        long = names[-1]
        names = [f"{long}/--no-{long.removeprefix('--')}"]
        options: dict[str, Any] = {"default": None}
    else:
        options = {"type": click.STRING, "metavar": _metavar(hint), "default": None}
    options.update(help=setting_help(key), **kwargs)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        return click.option(*names, cls=SettingOption, key=key, **options)(command)

    return decorate


def setting_keys() -> list[str]:
    """Every dotted setting that has a field (the test over all of them starts here)."""
    keys = [f.name for f in fields(LoopConfig) if "help" in f.metadata and f.name not in SECTIONS]
    for section, cls in SECTIONS.items():
        keys += [f"{section}.{f.name}" for f in fields(cls) if "help" in f.metadata]
    return keys


# --- reading a file of pairs (ingest, eval --data, audit --data) ---------------------------------

_FILE_TYPES = list(FORMATS)  # the file types prefloop.data.readers reads


def format_names() -> list[str]:
    """The dataset layouts ``--format`` names (one adapter per public format)."""
    from prefloop.data.formats import adapter_names

    return adapter_names()


_READING_OPTIONS = [
    click.option(
        "--format",
        "fmt",
        type=click.Choice([*_FILE_TYPES, *format_names()]),
        default=None,
        help="Dataset format (default: detected; `prefloop ingest --help` lists them), or a file type.",
    ),
    click.option(
        "--file-type",
        type=click.Choice(_FILE_TYPES),
        default=None,
        help="File type (default: from the name; a folder is a saved dataset or an Argilla to_disk export).",
    ),
    click.option(
        "--map",
        "mapping",
        multiple=True,
        metavar="CANONICAL=COLUMN",
        help="Rename a column: prompt, response_a, response_b, label, chosen, rejected, responses, ...; "
        "COLUMN may be a nested path (info.post, summaries.0.text) or json:COLUMN.",
    ),
    click.option(
        "--label-map",
        default=None,
        metavar="VALUE=a|b|tie,...",
        help="What each label value means, e.g. 1=a,0=b (needed for numeric labels).",
    ),
    click.option(
        "--label-decoder",
        type=click.Choice(["signed", "signed-b", "onehot", "rank"]),
        default=None,
        help="signed: label>0 means A better (|label| = strength); signed-b: >0 means B; "
        "onehot: label_a/label_b/label_tie columns; rank: rank_a/rank_b, 1 = best.",
    ),
]


def reading_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """How to read a file of pairs (ingest, eval --data, audit --data): its type, layout and label meaning."""
    for option in reversed(_READING_OPTIONS):
        command = option(command)
    return command


def _parse_mapping(values: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: use CANONICAL=COLUMN, e.g. prompt=question", param_hint="--map")
        canonical, column = item.split("=", 1)
        mapping[canonical.strip()] = column.strip()
    return mapping


def _parse_label_map(value: str | None) -> dict[str, Any] | None:
    from prefloop.types import Choice

    if not value:
        return None
    out: dict[str, Any] = {}
    for item in value.split(","):
        raw, _, meaning = item.partition("=")
        try:
            out[raw.strip()] = Choice(meaning.strip().lower())
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: use VALUE=a|b|tie|skip, e.g. 1=a,0=b", param_hint="--label-map"
            ) from None
    return out


def reading(
    fmt: str | None,
    file_type: str | None,
    mapping: tuple[str, ...],
    label_map: str | None,
    label_decoder: str | None,
    **more: Any,
) -> tuple[str | None, Any]:
    """(file type, ``ShapeOptions``) from the reading options; ``more`` sets other ``ShapeOptions`` fields."""
    from prefloop.data.fields import reading_shape

    return reading_shape(
        fmt,
        file_type,
        mapping=_parse_mapping(mapping) or None,
        label_map=_parse_label_map(label_map),
        label_decoder=label_decoder,
        **more,
    )


def known_encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """An ``--encoding`` Python knows, checked while the flags are parsed (before a store is made)."""
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise click.BadParameter(
            f"{value!r} is not a text encoding Python knows; use a codec name such as utf-8, utf-8-sig, "
            "latin-1 or cp1252"
        ) from None
    return value
