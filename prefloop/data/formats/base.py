"""The adapter contract: a named public format knows how to spot its rows and read one.

An ``Adapter`` is two pure functions over a row (a dict as the reader yields it): ``detect``
says whether a row has this format's unmistakable columns; ``convert`` turns one row into
``PairRecord``s whose labels are stated against (response_a, response_b) as given there.
Well-known datasets carry a few degenerate rows (identical responses, empty texts);
adapters raise ``DegenerateRow`` for those so ingest can skip and count them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prefloop.data.fields import MISSING, ShapeOptions, Where, get_path
from prefloop.errors import RowProblem
from prefloop.types import Choice, PairRecord

__all__ = ["Adapter", "Row", "label_of", "number", "required", "with_options"]

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Adapter:
    """A public format: its name for ``--format``, a one-line summary, and its two functions."""

    name: str
    summary: str
    detect: Callable[[Row], bool]
    convert: Callable[[Row, Where, ShapeOptions], list[PairRecord]]


def required(row: Row, path: str, where: Where) -> Any:
    """The value at ``path`` (nested paths allowed); a missing one is a row problem naming it."""
    value = get_path(row, path)
    if value is MISSING or value is None:
        raise RowProblem(where[0], where[1], path, "missing")
    return value


def number(value: Any, name: str, where: Where) -> float | None:
    """A number or None (missing, empty, NaN); anything else names the field."""
    if value is None or value is MISSING or value == "":
        return None
    if isinstance(value, bool):
        raise RowProblem(where[0], where[1], name, f"not a number: {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise RowProblem(where[0], where[1], name, f"not a number: {value!r}") from None
    return None if result != result else result


def label_of(value: Any, meaning: Mapping[Any, Choice], name: str, where: Where) -> Choice:
    """Look a raw label up in the format's own table; an unknown value names the field and the known ones."""
    key = int(value) if isinstance(value, float) and value.is_integer() else value
    if isinstance(key, str) and key.strip().lstrip("-").isdigit():
        key = int(key)
    if key not in meaning:
        known = ", ".join(repr(k) for k in meaning)
        raise RowProblem(where[0], where[1], name, f"unknown value {value!r}; this format uses {known}")
    return meaning[key]


def with_options(record: PairRecord, opts: ShapeOptions) -> PairRecord:
    """Apply ``--dimension`` / ``--annotator`` to a record that does not name its own."""
    if (opts.dimension is None or record.dimension) and (opts.annotator is None or record.annotator):
        return record
    return PairRecord(
        **{
            **record.__dict__,
            "dimension": record.dimension or opts.dimension,
            "annotator": record.annotator or opts.annotator,
        }
    )
