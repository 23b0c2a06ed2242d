"""``prefloop ingest``: read a whole source, write it in ONE transaction, all or nothing.

One streaming pass reads, checks and writes in batches inside a single transaction: the
first bad row stops the writing (the rest is still read, so every problem is reported
at once) and the transaction is rolled back, so a failure or a kill leaves the store
exactly as it was. With ``skip_invalid`` bad rows are written to a rejects file instead.

The format of a source is found from its first row (``formats.detect_adapter``) unless
named; rows of no known format are generic (``shapes.row_to_pairs``). Degenerate rows
of known formats (identical responses, empty texts) are skipped and counted unless
``strict``; a source with label-like columns from which no label was read is refused.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from queue import Full, Queue
from typing import Any, TypeVar

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from prefloop.data.fields import UNREAD, ShapeOptions
from prefloop.data.formats import TOOL_FORMATS, detect_adapter, get_adapter
from prefloop.data.readers import read_rows, tool_settings
from prefloop.data.shapes import LABEL_LIKE, apply_mapping, row_to_pairs
from prefloop.errors import AllRowsRejected, DegenerateRow, IngestError, NoLabelRead, RowProblem, SourceError
from prefloop.store.db import session_scope
from prefloop.store.pairs import AddedCounts, add_pairs, prepare_bulk_load
from prefloop.types import PairRecord

__all__ = [
    "IngestReport",
    "ReadResult",
    "ingest",
    "iter_records",
    "read_records",
    "read_unstored",
    "read_valid_records",
]

BATCH = 5000
MAX_KEPT_PROBLEMS = 200
T = TypeVar("T")
Converter = Callable[[dict[str, Any], tuple[str, int], ShapeOptions], list[PairRecord]]


@dataclass
class IngestReport:
    source: str
    format: str = "generic"
    rows: int = 0
    rejected: int = 0
    degenerate: int = 0
    pairs_seen: int = 0
    pairs_distinct: int = 0  # pairs_seen less the repeats within this source
    pairs_added: int = 0
    labels_seen: int = 0
    labels_added: int = 0
    annotators: int = 0
    rejects_path: str | None = None
    unread: dict[str, int] = field(default_factory=dict)  # tool control / question -> annotations it gave no label
    problems: list[dict[str, object]] = field(default_factory=list)
    degenerate_examples: list[dict[str, object]] = field(default_factory=list)

    @property
    def nothing_new(self) -> bool:
        return self.pairs_added == 0 and self.labels_added == 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ReadResult:
    """What ``read_records`` found: the pairs, and how many rows were degenerate or invalid."""

    records: list[PairRecord]
    format: str
    rows: int = 0
    degenerate: int = 0
    invalid: int = 0
    problems: list[RowProblem] = field(default_factory=list)


def _source_name(source: str) -> str:
    return Path(source).name or source


def _generic(row: dict[str, Any], where: tuple[str, int], opts: ShapeOptions) -> list[PairRecord]:
    return row_to_pairs(row, where[0], where[1], opts)


def choose_converter(first_row: dict[str, Any], opts: ShapeOptions) -> tuple[str, Converter]:
    """The named format, else the detected one; ``--map`` / label options mean the user's own layout."""
    if opts.fmt:
        adapter = get_adapter(opts.fmt)
        if not opts.mapping:
            return adapter.name, adapter.convert
        convert = adapter.convert  # a named format with renamed columns: --map first, then the format

        def mapped(row: dict[str, Any], where: tuple[str, int], o: ShapeOptions) -> list[PairRecord]:
            return convert(dict(apply_mapping(row, where, o)), where, o)

        return adapter.name, mapped
    detected = detect_adapter(first_row)
    if opts.mapping and detected is not None and detected.name in TOOL_FORMATS:  # a tool's export, texts renamed
        return choose_converter(first_row, replace(opts, fmt=detected.name))
    if opts.mapping or opts.label_decoder:  # the user's own layout (a --label-map alone may serve a tool export)
        return "generic", _generic
    return (detected.name, detected.convert) if detected else ("generic", _generic)


@dataclass
class _Reading:
    """State of one pass over a source: the format chosen and the first row's columns."""

    format: str = "generic"
    columns: tuple[str, ...] = ()
    unread: dict[str, int] = field(default_factory=dict)  # control / question -> annotations not read

    def note(self, records: list[PairRecord]) -> None:
        for record in records:
            for name in record.metadata.get(UNREAD, ()) if record.metadata else ():
                self.unread[name] = self.unread.get(name, 0) + 1


def iter_records(
    source: str,
    fmt: str | None = None,
    opts: ShapeOptions | None = None,
    split: str | None = None,
    *,
    encoding: str = "utf-8",
    hub: bool = False,
    state: _Reading | None = None,
) -> Iterator[tuple[int, list[PairRecord] | RowProblem]]:
    """Yield ``(line, pairs)`` for good rows and ``(line, problem)`` for bad ones.

    ``fmt`` is the file type (jsonl, json, csv, parquet, hf); ``opts.fmt`` the dataset format.
    A problem that makes the rest of the source unreadable is raised (``SourceError``,
    or a ``RowProblem`` for malformed JSON/CSV), never yielded.
    """
    opts = opts or ShapeOptions()
    if fmt != "hf" and not source.startswith("hf://") and (settings := tool_settings(source)) is not None:
        opts = replace(opts, extra={**opts.extra, "argilla_settings": settings})
    state = state if state is not None else _Reading()
    name = _source_name(source)
    convert: Converter | None = None
    for line, row in read_rows(source, fmt, split, encoding=encoding, hub=hub):
        if isinstance(row, RowProblem):  # a row the reader could not read: one bad row like any other
            yield line, row
            continue
        first = convert is None
        if convert is None:
            state.format, convert = choose_converter(row, opts)
            state.columns = tuple(str(k) for k in row)
        try:
            records = convert(row, (name, line), opts)
        except RowProblem as problem:
            if first and state.format == "generic" and problem.message.startswith("unrecognised shape"):
                raise SourceError(
                    name,
                    problem.message,
                    "Name the format with --format NAME (see prefloop ingest --help) or map the columns with --map.",
                ) from None
            yield line, problem
            continue
        state.note(records)
        yield line, records


def _check_labels_found(name: str, state: _Reading, labels_seen: int, rows: int) -> None:
    """A source with label-like columns that gave no label at all is a mapping mistake, not exit 0."""
    if rows and labels_seen == 0 and state.unread:
        names = sorted(state.unread, key=lambda n: -state.unread[n])
        shown = ", ".join(f"{n!r} ({state.unread[n]} annotation(s))" for n in names[:5])
        raise NoLabelRead(
            name,
            f"its rows carry annotations but no label was read: could not read {shown}",
            f"Say what the values of {names[0]!r} mean, e.g. --label-map 'Answer 1=a,Answer 2=b,Same=tie', "
            "or name the texts with --map prompt=... --map response_a=... --map response_b=...",
        )
    label_columns = [c for c in state.columns if c.lower() in LABEL_LIKE or c.lower().startswith("winner")]
    if rows and labels_seen == 0 and label_columns:
        raise NoLabelRead(
            name,
            f"has label-like column(s) {', '.join(label_columns)} but no label was read",
            f"Say what they mean, e.g. --map label={label_columns[0]} --label-map 1=a,0=b, "
            "or name the dataset with --format.",
        )


def read_records(
    source: str,
    fmt: str | None = None,
    opts: ShapeOptions | None = None,
    *,
    strict: bool = False,
    split: str | None = None,
    encoding: str = "utf-8",
    hub: bool = False,
) -> ReadResult:
    """Every pair a source holds, in memory (for evaluation and experiments, not ingest).

    Degenerate rows are skipped and counted (``result.degenerate``) unless ``opts.strict``;
    other bad rows are skipped and counted (``result.invalid``), or raise ``IngestError``
    naming them when ``strict``. File-level failures raise ``SourceError``, and so does a
    source with label-like columns from which no label was read.
    """
    opts = opts or ShapeOptions()
    state = _Reading()
    result = ReadResult(records=[], format="generic")
    for _line, item in iter_records(source, fmt, opts, split, encoding=encoding, hub=hub, state=state):
        result.rows += 1
        if isinstance(item, DegenerateRow) and not opts.strict:
            result.degenerate += 1
        elif isinstance(item, RowProblem):
            result.invalid += 1
            result.problems.append(item)
        else:
            result.records.extend(item)
    result.format = state.format
    if strict and result.problems:
        raise IngestError(result.problems[:MAX_KEPT_PROBLEMS], len(result.problems))
    labeled = sum(1 for r in result.records if r.label is not None)
    _check_labels_found(_source_name(source), state, labeled, len(result.records))
    return result


_INGEST_ONLY = ("--hub", "--encoding", "--hf-split", "--skip-invalid", "--strict")  # options eval and audit lack


def read_unstored(source: str, command: str, fmt: str | None = None, opts: ShapeOptions | None = None) -> ReadResult:
    """``read_records`` for a file a command reads but does not store (``eval --data``, ``audit --data``).

    Every row must be valid. Failures are ``InvalidRequest``s (exit 2) whose advice fits such a command:
    they name the file and line, never ingest's --skip-invalid or "nothing was written".
    """
    from prefloop.errors import InvalidRequest

    layout = "--format, --file-type, --map, --label-map and --label-decoder work as for `prefloop ingest`"
    try:
        return read_records(source, fmt, opts, strict=True)
    except SourceError as exc:
        hint = exc.hint
        if not hint or any(option in hint for option in _INGEST_ONLY):
            hint = (
                f"Check the path; {command} reads the files `prefloop ingest` reads (local files, hf://NAME); {layout}."
            )
        raise InvalidRequest(f"{exc.problems[0]}\n{hint}") from None  # bad input exits 2, as in ingest
    except IngestError as exc:
        shown = "\n".join(f"  {problem}" for problem in exc.problems[:10])
        more = f"\n  ... and {exc.total - 10} more" if exc.total > 10 else ""
        raise InvalidRequest(
            f"{exc.total} invalid row(s) in {source}:\n{shown}{more}\n"
            f"Fix those rows, or say how to read them: {layout} (`prefloop ingest --help` lists the layouts)."
        ) from None


def read_valid_records(
    source: str, fmt: str | None = None, opts: ShapeOptions | None = None, strict: bool = False
) -> list[PairRecord]:
    """The pairs of ``read_records`` alone (the older API, kept for its callers).

    Degenerate rows are skipped even when ``strict`` (strict is about invalid rows); use
    ``read_records`` to know how many were skipped.
    """
    return read_records(source, fmt, opts, strict=strict).records


def prefetched(items: Iterator[T], chunk: int = 500, depth: int = 8) -> Iterator[T]:
    """``items`` in order, produced by a background thread while the caller works on earlier ones.

    Reading and checking rows is Python; writing them is mostly SQLite's C code, which lets
    go of the GIL: on two cores the two overlap. An exception of the producer is raised
    here, at the point it happened in the sequence; a consumer that stops early stops the
    producer. At most ``chunk * depth`` items wait in memory.
    """
    queue: Queue[tuple[list[T], BaseException | None, bool]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[list[T], BaseException | None, bool]) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        buffer: list[T] = []
        try:
            for item in items:
                buffer.append(item)
                if len(buffer) >= chunk:
                    if not put((buffer, None, False)):
                        return
                    buffer = []
        except BaseException as exc:  # handed to the consumer, raised there
            put((buffer, exc, True))
            return
        put((buffer, None, True))

    thread = threading.Thread(target=produce, name="prefloop-ingest-reader", daemon=True)
    thread.start()
    try:
        while True:
            batch, error, done = queue.get()
            yield from batch
            if error is not None:
                raise error
            if done:
                return
    finally:
        stop.set()
        thread.join(timeout=5)


def _progress(enabled: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description} {task.completed:,} rows", markup=False),  # a file name is not markup
        TimeElapsedColumn(),
        disable=not enabled,
        transient=True,
    )


def _note(report: IngestReport, item: RowProblem, opts: ShapeOptions, problems: list[RowProblem], handle: Any) -> None:
    if isinstance(item, DegenerateRow) and not opts.strict:
        report.degenerate += 1
        if len(report.degenerate_examples) < 5:
            report.degenerate_examples.append(item.to_dict())
        return
    report.rejected += 1
    if len(problems) < MAX_KEPT_PROBLEMS:
        problems.append(item)
    if handle is not None:
        handle.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")


class _LazyFile:
    """A text file opened for writing at the first ``write`` (no empty rejects file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None

    def write(self, text: str) -> None:
        if self._handle is None:
            self._handle = self.path.open("w", encoding="utf-8")
        self._handle.write(text)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _count_row(
    report: IngestReport, records: list[PairRecord], who: set[str], default_annotator: str, distinct: set[int]
) -> None:
    """Pairs are counted per row (several labels of one row on the same texts are ONE pair read);
    ``distinct`` keeps a hash of every pair read so far, so repeats within the source are told apart."""
    pairs = {(r.prompt, frozenset((r.response_a, r.response_b))) for r in records}
    report.pairs_seen += len(pairs)
    distinct.update(hash(p) for p in pairs)
    who.update(r.annotator or default_annotator for r in records if r.label is not None)


def ingest(
    engine: Engine,
    source: str,
    *,
    fmt: str | None = None,
    opts: ShapeOptions | None = None,
    skip_invalid: bool = False,
    rejects_path: str | None = None,
    split: str = "pool",
    hf_split: str | None = None,
    progress: bool = True,
    encoding: str = "utf-8",
    hub: bool = False,
) -> IngestReport:
    """Read ``source`` into the store in one transaction; see the module docstring for the rules.

    Raises ``IngestError`` (nothing written) on bad rows unless ``skip_invalid``, and
    ``SourceError`` when the source itself cannot be read; re-ingesting adds nothing.
    """
    opts = opts or ShapeOptions()
    name = _source_name(source)
    report = IngestReport(source=source)
    rejects = Path(rejects_path or f"{name}.rejected.jsonl") if skip_invalid else None
    problems: list[RowProblem] = []
    counts = AddedCounts()
    state = _Reading()
    who: set[str] = set()
    distinct: set[int] = set()
    handle = _LazyFile(rejects) if rejects else None  # created at the first rejected row, not before
    try:
        with _progress(progress) as bar, session_scope(engine) as session:  # ONE transaction: all rows or none
            task = bar.add_task(f"reading {name}", total=None)
            prepare_bulk_load(session)
            batch: list[PairRecord] = []
            rows = iter_records(source, fmt, opts, hf_split, encoding=encoding, hub=hub, state=state)
            for _line, item in prefetched(rows):
                report.rows += 1
                if report.rows % 1000 == 0:
                    bar.update(task, completed=report.rows)
                if isinstance(item, RowProblem):
                    _note(report, item, opts, problems, handle)
                    continue
                batch.extend(item)
                _count_row(report, item, who, f"import:{name}", distinct)
                if len(batch) >= BATCH:
                    if report.rejected == 0 or skip_invalid:
                        counts += add_pairs(session, batch, source=name, split=split)
                    batch = []
            if report.rejected and not skip_invalid:
                raise IngestError(problems, report.rejected)
            if report.rejected and report.rejected + report.degenerate >= report.rows:
                raise AllRowsRejected(problems, report.rejected, str(rejects) if rejects else None)
            if batch:
                counts += add_pairs(session, batch, source=name, split=split)
            report.format = state.format
            _check_labels_found(name, state, counts.labels_seen, report.rows - report.rejected - report.degenerate)
    except RowProblem as fatal:  # malformed JSON/CSV: the source cannot be read past this point
        problems.append(fatal)
        raise IngestError(problems, report.rejected + 1) from None
    finally:
        if handle is not None:
            handle.close()
    report.problems = [p.to_dict() for p in problems[:20]]
    if rejects is not None:
        report.rejects_path = str(rejects) if report.rejected else None
    report.pairs_distinct, report.pairs_added = len(distinct), counts.pairs_added
    report.labels_seen, report.labels_added = counts.labels_seen, counts.labels_added
    report.annotators = len(who)
    report.unread = dict(state.unread)
    return report
