"""Shared steps of the format tests: write a fixture, ingest it, export raw labels, read verdicts back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from prefloop.data.export import export_labels
from prefloop.data.fields import ShapeOptions
from prefloop.data.ingest import IngestReport, ingest
from prefloop.store.db import session_scope
from prefloop.store.queries import store_stats


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_json_array(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


def stats(engine: Engine) -> dict[str, Any]:
    with session_scope(engine) as session:
        return store_stats(session)


def _text(value: Any) -> str:
    """A response as text: conversational exports give message lists; the last turn names it."""
    if isinstance(value, list):
        return str(value[-1]["content"])
    return str(value)


def raw_verdicts(engine: Engine, tmp_path: Path) -> list[tuple[str, str, str, float | None]]:
    """Every stored label as (winner text | 'tie' | 'skip', annotator, dimension, strength), sorted.

    Read through ``export --kind raw``, so the round trip is what is checked.
    """
    out = tmp_path / "raw.jsonl"
    export_labels(engine, str(out), kind="raw", dimension=None)
    verdicts = []
    for line in out.read_text().splitlines():
        row = json.loads(line)
        choice = row["choice"]
        winner = _text(row["response_a"]) if choice == "a" else _text(row["response_b"]) if choice == "b" else choice
        verdicts.append((winner, row["annotator"], row["dimension"], row["strength"]))
    return sorted(verdicts, key=repr)


def run(engine: Engine, path: Path, **options: Any) -> IngestReport:
    return ingest(engine, str(path), opts=ShapeOptions(**options), progress=False)
