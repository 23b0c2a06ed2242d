"""Streaming readers: JSONL, CSV, Parquet and Hugging Face datasets, one row at a time.

Each reader yields ``(line, row)``: ``line`` is the 1-based line (JSONL, CSV: the
record's first line) or row number (Parquet, datasets), so every error can name
where it happened. Memory stays bounded by a batch, whatever the file's size.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from prefloop.errors import RowProblem

__all__ = ["detect_format", "read_rows"]

Row = dict[str, Any]

FORMATS = ("jsonl", "csv", "parquet", "hf")


def detect_format(source: str) -> str:
    """Guess the format from the name; a folder or a name that is not a file is a `datasets` source."""
    path = Path(source)
    name = path.name.lower()
    for suffix in (".gz", ".bz2"):
        name = name.removesuffix(suffix)
    if path.is_dir() or not path.exists():
        return "hf"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise RowProblem(source, None, None, "unknown file type; use --format jsonl|csv|parquet|hf")


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def _read_jsonl(path: Path) -> Iterator[tuple[int, Row]]:
    with _open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RowProblem(str(path), number, None, f"not valid UTF-8 (byte {exc.start})") from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RowProblem(str(path), number, None, f"malformed JSON: {exc.msg} at column {exc.colno}") \
                    from None
            if not isinstance(row, dict):
                raise RowProblem(str(path), number, None, "each line must be a JSON object")
            yield number, row


class _LineCountingReader(io.TextIOBase):
    """Text stream over UTF-8 bytes that remembers the line it is on and names bad bytes."""

    def __init__(self, raw: IO[bytes], name: str) -> None:
        self.raw = raw
        self.name = name
        self.line = 0

    def readline(self, size: int | None = -1) -> str:
        data = self.raw.readline()
        if not data:
            return ""
        self.line += 1
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RowProblem(self.name, self.line, None, f"not valid UTF-8 (byte {exc.start})") from None

    def __iter__(self) -> Iterator[str]:
        while line := self.readline():
            yield line

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def _read_csv(path: Path) -> Iterator[tuple[int, Row]]:
    csv.field_size_limit(1 << 30)
    with _open_binary(path) as handle:
        stream = _LineCountingReader(handle, str(path))
        delimiter = "\t" if ".tsv" in path.name.lower() else ","
        reader = csv.DictReader(stream, delimiter=delimiter)
        start = 2
        try:
            for row in reader:
                if None in row:
                    raise RowProblem(str(path), start, None, "more values than header columns")
                yield start, dict(row)
                start = stream.line + 1
        except csv.Error as exc:
            raise RowProblem(str(path), stream.line, None, f"malformed CSV: {exc}") from None


def _read_parquet(path: Path) -> Iterator[tuple[int, Row]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise RowProblem(str(path), None, None, f"not a readable Parquet file: {exc}") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=2000):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def _read_hf(source: str, split: str | None) -> Iterator[tuple[int, Row]]:
    try:
        import datasets
    except ImportError:
        raise RowProblem(source, None, None, "reading a datasets source needs: pip install 'prefloop[hf]'") \
            from None
    path = Path(source)
    try:
        saved = (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()
        if path.is_dir() and saved:
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(source, split=split, streaming=True)
    except Exception as exc:
        raise RowProblem(source, None, None, f"could not load the dataset: {exc}") from None
    if isinstance(loaded, datasets.DatasetDict | datasets.IterableDatasetDict):
        name = split or ("train" if "train" in loaded else next(iter(loaded)))
        loaded = loaded[name]
    for number, row in enumerate(loaded, start=1):
        yield number, dict(row)


def read_rows(source: str, fmt: str | None = None, split: str | None = None) -> Iterator[tuple[int, Row]]:
    """Yield ``(line, row)`` from any supported source; raises ``RowProblem`` on unreadable input."""
    fmt = fmt or detect_format(source)
    if fmt == "hf":
        yield from _read_hf(source, split)
        return
    path = Path(source)
    if not path.exists():
        raise RowProblem(source, None, None, "file not found")
    readers = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}
    if fmt not in readers:
        raise RowProblem(source, None, None, f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    yield from readers[fmt](path)
