"""Public preference formats: one small module per dataset or tool export, and a registry.

``get_adapter(name)`` gives the adapter ``--format NAME`` selects; ``detect_adapter(row)``
finds the one format whose unmistakable columns a row has (the most specific formats
are tried first), or None when the row is generic (then ``shapes.row_to_pairs`` reads it
with ``--map`` and ``--label-map``).
"""

from __future__ import annotations

from prefloop.data.formats import (
    arena,
    argilla,
    helpsteer,
    label_studio,
    nectar,
    pandalm,
    pku,
    shp,
    summarize,
    trl,
    ultrafeedback,
)
from prefloop.data.formats.base import Adapter, Row

__all__ = ["ADAPTERS", "TOOL_FORMATS", "Adapter", "adapter_names", "detect_adapter", "get_adapter"]

# Order matters for detection: specific layouts before the generic chosen/rejected ones.
ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for module in (label_studio, argilla, arena, pandalm, helpsteer, pku, shp, summarize, nectar, ultrafeedback, trl)
    for a in module.ADAPTERS
}

# The annotation tools' exports: detected even when --map renames their texts.
TOOL_FORMATS = frozenset(a.name for module in (label_studio, argilla) for a in module.ADAPTERS)


def adapter_names() -> list[str]:
    return list(ADAPTERS)


def get_adapter(name: str) -> Adapter:
    """The adapter called ``name``; an unknown name lists the known ones."""
    from prefloop.errors import ConfigError

    if name not in ADAPTERS:
        raise ConfigError(f"unknown format {name!r}; known formats: {', '.join(ADAPTERS)}")
    return ADAPTERS[name]


def detect_adapter(row: Row) -> Adapter | None:
    """The first adapter whose ``detect`` accepts ``row``, or None for a generic row."""
    for adapter in ADAPTERS.values():
        if adapter.detect(row):
            return adapter
    return None
