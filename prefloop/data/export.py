"""``prefloop export``: labels out as TRL chosen/rejected rows or raw per-annotator rows.

Formats: JSONL, Parquet, or a Hugging Face ``datasets`` folder (``save_to_disk``).
Pairs that came in as message lists (TRL conversational data, Arena conversations) go
out as message lists again: ``prompt`` a list of messages, ``chosen`` / ``rejected`` the
assistant's turns. Raw rows keep every dimension, ties and skips unless told otherwise.
Ties never enter chosen/rejected data; with ``ties="separate"`` they (and the pairs
whose annotators disagree) go to a second file beside the main one.

Several labels on one pair become one row by ``aggregate``: ``majority`` (a tie for the most
votes between a and b is a disagreement, left out), ``dawid-skene`` (the most probable class
under a Dawid–Skene fit over all annotators, with its posterior as ``confidence``), or
``none`` (one row per label).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from prefloop.annotators.aggregate import AGGREGATIONS, aggregate_labels
from prefloop.errors import PrefloopError
from prefloop.store.db import session_scope
from prefloop.store.pairs import conversations
from prefloop.store.queries import LabeledRow, aggregate_choice, iter_labeled_rows

__all__ = ["ExportReport", "export_labels"]

FORMATS = ("jsonl", "parquet", "hf")


@dataclass
class ExportReport:
    path: str
    rows: int
    ties_path: str | None
    ties: int
    disagreements: int


Conversations = dict[int, tuple[list[Any], list[Any], list[Any]]]


def _with_conversations(
    session: Any, labels: Iterable[LabeledRow], size: int = 2000
) -> Iterator[tuple[LabeledRow, Conversations]]:
    """Labels in chunks, each with the message lists of its pairs (one query per chunk, not per pair)."""
    iterator = iter(labels)
    while chunk := list(itertools.islice(iterator, size)):
        found = conversations(session, [lb.pair_id for lb in chunk])
        for lb in chunk:
            yield lb, found


def _texts(lb: LabeledRow, convs: Conversations) -> tuple[Any, Any, Any]:
    """Prompt, A and B as message lists when the pair came in as messages, else as texts."""
    if lb.pair_id in convs:
        return convs[lb.pair_id]
    return lb.prompt, lb.response_a, lb.response_b


def _trl_row(prompt: Any, winner: str, a: Any, b: Any, strength: float | None, margin: bool) -> dict[str, Any]:
    chosen, rejected = (a, b) if winner == "a" else (b, a)
    row: dict[str, Any] = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    if margin:
        row["margin"] = float(strength) if strength is not None else 0.0
    return row


def _dawid_skene_rows(labels: Iterable[LabeledRow], margin: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    """One row per pair: the Dawid–Skene verdict, its posterior as ``confidence``."""
    rows = list(labels)
    posteriors = aggregate_labels(
        [lb.pair_id for lb in rows],
        [(lb.backend, lb.annotator) for lb in rows],
        [lb.choice for lb in rows],
        "dawid-skene",
    )
    for pair_id, group in itertools.groupby(rows, key=lambda lb: lb.pair_id):
        items = list(group)
        first = items[0]
        post = posteriors[pair_id]
        assert post is not None
        winner = ("a", "b", "tie")[int(post.argmax())]
        extra = {
            "n_labels": len(items),
            "confidence": round(float(post.max()), 6),
            "posterior": {"a": float(post[0]), "b": float(post[1]), "tie": float(post[2])},
        }
        if winner == "tie":
            yield (
                "ties",
                {
                    "prompt": first.prompt,
                    "response_a": first.response_a,
                    "response_b": first.response_b,
                    "reason": "tie",
                    "votes": [lb.choice for lb in items],
                    **extra,
                },
            )
            continue
        strengths = [lb.strength for lb in items if lb.choice == winner and lb.strength is not None]
        strength = sum(strengths) / len(strengths) if strengths else None
        yield "main", {**_trl_row(first.prompt, winner, first.response_a, first.response_b, strength, margin), **extra}


def _rows(
    labels: Iterable[tuple[LabeledRow, Conversations]], kind: str, aggregate: bool | str, margin: bool
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (stream, row): stream 'main' or 'ties' (ties and disagreements)."""
    if kind == "raw":
        for lb, convs in labels:
            row = asdict(lb)
            if lb.pair_id in convs:
                row["prompt"], row["response_a"], row["response_b"] = convs[lb.pair_id]
            yield "main", row
        return
    if aggregate == "dawid-skene":
        yield from _dawid_skene_rows((lb for lb, _ in labels), margin)
        return
    if not aggregate or aggregate == "none":
        for lb, convs in labels:
            prompt, a, b = _texts(lb, convs)
            if lb.choice == "tie":
                yield (
                    "ties",
                    {"prompt": prompt, "response_a": a, "response_b": b, "annotator": lb.annotator, "reason": "tie"},
                )
            else:
                yield "main", {**_trl_row(prompt, lb.choice, a, b, lb.strength, margin), "annotator": lb.annotator}
        return
    for _pair_id, group in itertools.groupby(labels, key=lambda item: item[0].pair_id):
        items = list(group)
        prompt, a, b = _texts(*items[0])
        winner = aggregate_choice([lb.choice for lb, _ in items])
        if winner in ("a", "b"):
            strengths = [lb.strength for lb, _ in items if lb.choice == winner and lb.strength is not None]
            strength = sum(strengths) / len(strengths) if strengths else None
            yield "main", {**_trl_row(prompt, winner, a, b, strength, margin), "n_labels": len(items)}
        else:
            yield (
                "ties",
                {
                    "prompt": prompt,
                    "response_a": a,
                    "response_b": b,
                    "n_labels": len(items),
                    "reason": "tie" if winner == "tie" else "disagreement",
                    "votes": [lb.choice for lb, _ in items],
                },
            )


class _Sink:
    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt, self.count = path, fmt, 0
        self.buffer: list[dict[str, Any]] = []
        self.handle = path.open("w", encoding="utf-8") if fmt == "jsonl" else None
        self.writer: Any = None

    def write(self, row: dict[str, Any]) -> None:
        self.count += 1
        if self.handle:
            self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        self.buffer.append(row)
        if self.fmt == "parquet" and len(self.buffer) >= 5000:
            self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buffer:
            return
        table = pa.Table.from_pylist(self.buffer)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table.cast(self.writer.schema))
        self.buffer = []

    def close(self) -> None:
        if self.handle:
            self.handle.close()
        elif self.fmt == "parquet":
            self._flush_parquet()
            if self.writer is not None:
                self.writer.close()
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                pq.write_table(pa.table({}), self.path)
        else:
            try:
                import datasets
            except ImportError:
                raise PrefloopError("exporting a datasets folder needs: pip install 'prefloop[hf]'") from None
            datasets.Dataset.from_list(self.buffer).save_to_disk(str(self.path))


def export_labels(
    engine: Engine,
    out: str,
    *,
    fmt: str = "jsonl",
    kind: str = "trl",
    aggregate: bool | str = True,
    ties: str = "exclude",
    margin: bool = False,
    dimension: str | None = "overall",
    split: str | None = None,
    include_skips: bool | None = None,
) -> ExportReport:
    """Write the store's current labels; see the module docstring for the rules.

    ``dimension=None`` exports every dimension (useful with ``kind="raw"``); skips are in
    raw exports and never in TRL ones unless ``include_skips`` says otherwise.
    """
    if include_skips is None:
        include_skips = kind == "raw"
    if kind == "trl" and dimension is None:
        dimension = "overall"  # chosen/rejected rows of several dimensions would contradict each other
    if fmt not in FORMATS:
        raise PrefloopError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if kind not in ("trl", "raw"):
        raise PrefloopError(f"unknown export kind {kind!r}; use trl or raw")
    if isinstance(aggregate, str) and aggregate not in AGGREGATIONS:
        raise PrefloopError(f"unknown aggregation {aggregate!r}; use one of {', '.join(AGGREGATIONS)}")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    main = _Sink(path, fmt)
    ties_sink: _Sink | None = None
    ties_path = path.with_name(path.stem + ".ties" + path.suffix) if ties == "separate" else None
    n_ties = n_disagree = 0
    try:
        with session_scope(engine) as session:
            labels = _with_conversations(
                session, iter_labeled_rows(session, dimension=dimension, split=split, include_skips=include_skips)
            )
            for stream, row in _rows(labels, kind, aggregate, margin):
                if stream == "main":
                    main.write(row)
                    continue
                if row.get("reason") == "disagreement":
                    n_disagree += 1
                else:
                    n_ties += 1
                if ties_path is not None:
                    ties_sink = ties_sink or _Sink(ties_path, fmt)
                    ties_sink.write(row)
    finally:
        main.close()
        if ties_sink:
            ties_sink.close()
    return ExportReport(
        path=str(path),
        rows=main.count,
        ties_path=str(ties_path) if ties_sink else None,
        ties=n_ties,
        disagreements=n_disagree,
    )
