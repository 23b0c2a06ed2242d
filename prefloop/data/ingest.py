"""``prefloop ingest``: validate a whole source, then write it in one transaction.

Two streaming passes keep memory bounded: the first validates every row (and,
with ``skip_invalid``, writes the rejected ones with their reasons); the second
writes the valid rows in batches inside ONE transaction, so a failure or a kill
leaves the store exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from prefloop.data.readers import detect_format, read_rows
from prefloop.data.shapes import ShapeOptions, row_to_pairs
from prefloop.errors import IngestError, RowProblem
from prefloop.store.db import session_scope
from prefloop.store.pairs import AddedCounts, add_pairs
from prefloop.types import PairRecord

__all__ = ["IngestReport", "ingest", "iter_records", "read_valid_records"]

BATCH = 2000
MAX_KEPT_PROBLEMS = 200


@dataclass
class IngestReport:
    source: str
    rows: int = 0
    rejected: int = 0
    pairs_seen: int = 0
    pairs_added: int = 0
    labels_seen: int = 0
    labels_added: int = 0
    rejects_path: str | None = None
    problems: list[dict[str, object]] = field(default_factory=list)

    @property
    def nothing_new(self) -> bool:
        return self.pairs_added == 0 and self.labels_added == 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _source_name(source: str) -> str:
    return Path(source).name or source


def iter_records(source: str, fmt: str | None = None, opts: ShapeOptions | None = None,
                 split: str | None = None) -> Iterator[tuple[int, list[PairRecord] | RowProblem]]:
    """Yield ``(line, pairs)`` for good rows and ``(line, problem)`` for bad ones.

    A problem that makes the rest of the file unreadable (not UTF-8 inside a CSV, a
    broken Parquet file) is raised instead.
    """
    opts = opts or ShapeOptions()
    name = _source_name(source)
    for line, row in read_rows(source, fmt, split):
        try:
            yield line, row_to_pairs(row, name, line, opts)
        except RowProblem as problem:
            yield line, problem


def read_valid_records(source: str, fmt: str | None = None, opts: ShapeOptions | None = None,
                       strict: bool = False) -> list[PairRecord]:
    """Every pair a source holds, in memory (for evaluation and experiments, not ingest).

    Bad rows are skipped, or raise ``IngestError`` naming them when ``strict``.
    """
    records: list[PairRecord] = []
    problems: list[RowProblem] = []
    for _line, item in iter_records(source, fmt, opts):
        if isinstance(item, RowProblem):
            problems.append(item)
        else:
            records.extend(item)
    if strict and problems:
        raise IngestError(problems, len(problems))
    return records


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not enabled, transient=True)


def _validate(source: str, fmt: str, opts: ShapeOptions, hf_split: str | None, report: IngestReport,
              rejects: Path | None, progress: Progress) -> list[RowProblem]:
    problems: list[RowProblem] = []
    task = progress.add_task(f"checking {_source_name(source)}", total=None)
    handle = rejects.open("w", encoding="utf-8") if rejects else None
    try:
        for _line, item in iter_records(source, fmt, opts, hf_split):
            report.rows += 1
            progress.advance(task)
            if isinstance(item, RowProblem):
                report.rejected += 1
                if len(problems) < MAX_KEPT_PROBLEMS:
                    problems.append(item)
                if handle:
                    handle.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
    except RowProblem as fatal:  # the source cannot be read past this point
        problems.append(fatal)
        report.rejected += 1
        raise IngestError(problems, report.rejected) from None
    finally:
        if handle:
            handle.close()
    return problems


def ingest(engine: Engine, source: str, *, fmt: str | None = None, opts: ShapeOptions | None = None,
           skip_invalid: bool = False, rejects_path: str | None = None, split: str = "pool",
           hf_split: str | None = None, progress: bool = True) -> IngestReport:
    """Read ``source`` into the store. Raises ``IngestError`` (nothing written) on bad rows
    unless ``skip_invalid``; re-ingesting the same source adds nothing."""
    opts = opts or ShapeOptions()
    fmt = fmt or detect_format(source)
    report = IngestReport(source=source)
    rejects = Path(rejects_path or f"{_source_name(source)}.rejected.jsonl") if skip_invalid else None
    with _progress(progress) as bar:
        problems = _validate(source, fmt, opts, hf_split, report, rejects, bar)
        report.problems = [p.to_dict() for p in problems[:20]]
        if problems and not skip_invalid:
            raise IngestError(problems, report.rejected)
        if rejects is not None:
            report.rejects_path = str(rejects) if report.rejected else None
            if not report.rejected:
                rejects.unlink(missing_ok=True)
        counts = AddedCounts()
        task = bar.add_task(f"writing {_source_name(source)}", total=report.rows - report.rejected)
        name = _source_name(source)
        batch: list[PairRecord] = []
        with session_scope(engine) as session:  # ONE transaction: all rows or none
            for _line, item in iter_records(source, fmt, opts, hf_split):
                if isinstance(item, RowProblem):
                    continue
                batch.extend(item)
                bar.advance(task)
                if len(batch) >= BATCH:
                    counts += add_pairs(session, batch, source=name, split=split)
                    batch = []
            if batch:
                counts += add_pairs(session, batch, source=name, split=split)
    report.pairs_seen, report.pairs_added = counts.pairs_seen, counts.pairs_added
    report.labels_seen, report.labels_added = counts.labels_seen, counts.labels_added
    return report
