"""``prefloop export``: one call from the command line's options to the file written.

Picks the file format from the name when none is given, refuses to write onto an existing
folder before the store is opened, and sends ``--kind scores`` to ``export_scores`` and the
label kinds to ``export_labels`` (a ``--dimension`` the store has no labels of is an error,
not an empty file).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from prefloop.data.export import ExportReport, export_labels
from prefloop.data.export_scores import export_scores
from prefloop.errors import InvalidRequest
from prefloop.store.db import session_scope
from prefloop.store.queries import label_dimensions

__all__ = ["export_format", "export_store"]


def export_format(out: str, fmt: str | None = None) -> str:
    """``fmt``, else from OUT's suffix: .json and .jsonl are JSON lines, .parquet Parquet, anything else a folder."""
    if fmt is not None:
        return fmt
    suffix = Path(out).suffix.lower()
    return "parquet" if suffix == ".parquet" else "jsonl" if suffix in (".json", ".jsonl") else "hf"


def export_store(
    open_engine: Callable[[], Engine],
    out: str,
    *,
    fmt: str | None = None,
    kind: str = "trl",
    model: str | None = None,
    aggregate: str = "majority",
    ties: str = "exclude",
    margin: bool = False,
    dimension: str | None = None,
) -> ExportReport:
    """Write labels (``kind`` trl or raw) or a model's scores (``scores``) to ``out``; the store is opened last."""
    fmt = export_format(out, fmt)
    if Path(out).is_dir():
        raise InvalidRequest(
            f"{out} is an existing folder; export writes a new file or folder: remove it or choose another name"
        )
    engine = open_engine()
    if kind == "scores":
        return export_scores(engine, out, model=model, fmt=fmt, dimension=dimension)
    if dimension is not None:
        with session_scope(engine) as session:
            known = label_dimensions(session)
        if dimension not in known:
            raise InvalidRequest(
                f"no labels of dimension {dimension!r} in the store; its dimensions: "
                f"{', '.join(known) or 'none (no labels yet)'}"
            )
    return export_labels(
        engine, out, fmt=fmt, kind=kind, aggregate=aggregate, ties=ties, margin=margin, dimension=dimension
    )
