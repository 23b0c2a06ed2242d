"""``prefloop gold``: known-answer pairs for gold checks, from a file or from unanimous reliable labels."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from prefloop.annotators import annotator_report
from prefloop.errors import PrefloopError
from prefloop.loop.annotator_quality import annotations_from_rows
from prefloop.store.annotations import annotation_rows
from prefloop.store.db import session_scope
from prefloop.store.gold import add_gold_answers, unanimous_pairs
from prefloop.store.pairs import add_pairs, pairs_by_keys
from prefloop.types import Choice

__all__ = ["add_gold_file", "derive_gold"]


def add_gold_file(engine: Engine, path: str) -> dict[str, Any]:
    """Pairs with known answers from any labeled file ``ingest`` reads.

    New pairs go in as split ``gold``: never chosen by acquisition nor trained on. A pair whose
    labels in the file disagree is not a known answer and is skipped.
    """
    from prefloop.data.ingest import read_valid_records

    records = [r for r in read_valid_records(path) if r.label is not None and r.label is not Choice.SKIP]
    if not records:
        raise PrefloopError(f"{path}: no labeled pairs; a gold file needs a label per pair")
    answers: dict[str, set[str]] = {}
    for r in records:
        answers.setdefault(r.canonical().key, set()).add(r.canonical().label.value)  # type: ignore[union-attr]
    known = {key: next(iter(a)) for key, a in answers.items() if len(a) == 1}
    source = f"gold:{Path(path).name}"
    with session_scope(engine) as session:
        add_pairs(session, [replace(r, label=None, annotator=None) for r in records], source=source, split="gold")
        ids = {key: pair.id for key, pair in pairs_by_keys(session, known).items()}
        added = add_gold_answers(session, {ids[k]: v for k, v in known.items()}, source)
    return {"pairs": len(answers), "gold_answers": added, "conflicting": len(answers) - len(known)}


def derive_gold(engine: Engine, min_labels: int = 3, min_reliability: float = 0.8) -> dict[str, Any]:
    """Known answers from pairs every one of whose (at least ``min_labels``) labels agree and come from
    annotators the quality report trusts: not flagged, Dawid–Skene reliability ≥ ``min_reliability``."""
    with session_scope(engine) as session:
        rows = annotation_rows(session)
    annotations = annotations_from_rows(rows)
    report = annotator_report(annotations)
    trusted = {
        r["annotator"]
        for r in report["annotators"]
        if not r["flagged"] and (r["reliability"] or 0.0) >= min_reliability
    }
    ids = {row.annotator_id for row, a in zip(rows, annotations, strict=True) if a.annotator in trusted}
    with session_scope(engine) as session:
        answers = unanimous_pairs(session, min_labels, ids)
        added = add_gold_answers(session, answers, "unanimous")
    return {"trusted_annotators": sorted(trusted), "candidates": len(answers), "gold_answers": added}
