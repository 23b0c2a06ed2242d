"""Streaming readers: JSONL, JSON arrays, CSV, Parquet and Hugging Face datasets, one row at a time.

Each reader yields ``(line, row)``: ``line`` is the 1-based line (JSONL, CSV: the
record's first line), the element number (JSON arrays) or row number (Parquet,
datasets), so every error can name where it happened. JSONL, CSV and Parquet stay
bounded by a batch whatever the file's size; a JSON array (the shape Label Studio,
Argilla and PandaLM write) is parsed whole, as those exports are.

A problem with the source as a whole (missing, empty, not really gzip, not Parquet,
not in the encoding claimed) raises ``SourceError`` with one line saying what to do;
a problem in one row is the caller's, as a ``RowProblem``: a JSONL line that is not a JSON
object, a CSV row with more values than columns, a line with bytes not in ``encoding`` are
yielded as ``(line, RowProblem)`` so reading goes on and ``--skip-invalid`` can skip them.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

from prefloop.errors import RowProblem, SourceError

__all__ = ["FORMATS", "HUB_PREFIX", "detect_format", "read_rows", "require_source", "tool_settings"]

Row = dict[str, Any]

FORMATS = ("jsonl", "json", "csv", "parquet", "hf")
HUB_PREFIX = "hf://"
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
# Errors a decompressor raises when the bytes are not what the suffix claims.
_BAD_STREAM = (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError)


def _plain_name(path: Path) -> str:
    name = path.name.lower()
    for suffix in _COMPRESSED:
        name = name.removesuffix(suffix)
    return name


def detect_format(source: str, hub: bool = False) -> str:
    """The reader for ``source``: from the file name; a saved dataset folder or a hub name is ``hf``.

    A local path that does not exist is an error at once: only ``hf://name`` or ``hub=True``
    sends a name to the Hugging Face Hub (a typo must not cost 25 s of network retries).
    """
    if source.startswith(HUB_PREFIX) or hub:
        return "hf"
    path = Path(source)
    if path.is_dir():  # Argilla's to_disk (records.json) or to_hub (data/*.parquet) folder, or a saved dataset
        if (path / "records.json").is_file():
            return "json"
        return "parquet" if _parquet_files(path) else "hf"
    if not path.exists():
        raise SourceError(
            source,
            "file not found",
            f"Check the path; to read a Hugging Face Hub dataset write {HUB_PREFIX}{source} or pass --hub.",
        )
    name = _plain_name(path)
    if name.endswith(".json"):
        return "json"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise SourceError(source, "unknown file type", "Name the reader with --file-type jsonl|json|csv|parquet|hf.")


def require_source(source: str, fmt: str | None = None, hub: bool = False) -> str:
    """The file type of ``source`` (``fmt``, else detected), failing at once on a local source that is
    missing or of no known type (ingest calls it before it opens a store)."""
    if fmt is None:
        return detect_format(source, hub)
    if fmt != "hf" and not Path(source).exists():
        raise SourceError(source, "file not found", "Check the path.")
    return fmt


def _open_binary(path: Path) -> IO[bytes]:
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))  # a GzipFile reads bytes
    if suffix == ".bz2":
        return bz2.open(path, "rb")
    if suffix == ".xz":
        return lzma.open(path, "rb")
    if suffix == ".zst":
        try:
            import zstandard
        except ImportError:
            raise SourceError(
                str(path),
                "Zstandard-compressed input needs the zstandard package",
                "pip install zstandard, or decompress first: zstd -d FILE",
            ) from None
        return zstandard.ZstdDecompressor().stream_reader(path.open("rb"))
    return path.open("rb")


def _decoder(name: str, encoding: str) -> Any:
    """Decode one line; the first may carry a BOM (Excel, Notepad), which is never part of a column name."""

    shown = "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding

    def decode(raw: bytes, number: int) -> str:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise SourceError(
                name,
                f"not valid {shown} (byte {exc.start})",
                "If the file is in another encoding, pass it, e.g. --encoding latin-1.",
                line=number,
            ) from None
        return text.removeprefix("\ufeff") if number == 1 else text

    return decode


def _first_byte(path: Path) -> bytes:
    """The first non-blank byte, read through the decompressor (so a bad .gz fails here, cleanly)."""
    with _open_binary(path) as handle:
        while chunk := handle.read(4096):
            stripped = chunk.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()
            if stripped:
                return stripped[:1]
    return b""


def _undecodable(path: Path, number: int, encoding: str, exc: UnicodeDecodeError) -> RowProblem:
    shown = "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    return RowProblem(
        str(path),
        number,
        None,
        f"not valid {shown} (byte {exc.start}); if the file is in another encoding, pass it, e.g. --encoding latin-1",
    )


def _read_jsonl(path: Path, encoding: str) -> Iterator[tuple[int, Row | RowProblem]]:
    with _open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                yield number, _undecodable(path, number, encoding, exc)
                continue
            text = text.removeprefix("\ufeff") if number == 1 else text
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:  # json's message ends "at line 1 column N": say only the column
                yield number, RowProblem(str(path), number, None, f"malformed JSON: {exc.msg}, column {exc.colno}")
                continue
            if not isinstance(row, dict):
                yield number, RowProblem(str(path), number, None, "each line must be a JSON object")
                continue
            yield number, row


def _read_json(path: Path, encoding: str) -> Iterator[tuple[int, Row | RowProblem]]:
    """A ``.json`` file: one JSON array of objects, or (common, if misnamed) JSON lines."""
    if path.is_dir():  # an Argilla ``to_disk`` folder
        path = path / "records.json"
    if _first_byte(path) != b"[":
        yield from _read_jsonl(path, encoding)
        return
    with _open_binary(path) as handle:
        raw = handle.read()
    text = _decoder(str(path), encoding)(raw, 1)
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(
            str(path), f"malformed JSON array: {exc.msg}", "Check that the export finished.", line=exc.lineno
        ) from None
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            yield number, RowProblem(str(path), number, None, "each element of the JSON array must be an object")
            continue
        yield number, row


class _LineCountingReader(io.TextIOBase):
    """Text stream over bytes that remembers the line it is on and names bad bytes."""

    def __init__(self, raw: IO[bytes], name: str, encoding: str) -> None:
        self.raw = raw
        self.decode = _decoder(name, encoding)
        self.encoding_name = encoding
        self.line = 0
        self.bad: dict[int, UnicodeDecodeError] = {}  # line → its undecodable bytes (the header's fail at once)

    # typeshed gives TextIOBase the bytes signatures of _IOBase too: these override both.
    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        data = self.raw.readline()
        if not data:
            return ""
        self.line += 1
        if self.line > 1:
            try:
                data.decode(self.encoding_name)
            except UnicodeDecodeError as exc:  # one bad row, not a bad file: read on, report the row
                self.bad[self.line] = exc
                return data.decode(self.encoding_name, errors="replace")
        return str(self.decode(data, self.line))

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        while line := self.readline():
            yield line

    def __next__(self) -> str:  # type: ignore[override]
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def _delimiter(path: Path, encoding: str) -> str:
    """Tab for .tsv; otherwise the header line decides between , ; tab and | (Excel writes ; in
    many locales), comma when it cannot tell."""
    if ".tsv" in path.name.lower():
        return "\t"
    with _open_binary(path) as handle:
        header = handle.readline().decode(encoding, errors="replace")
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def _read_csv(path: Path, encoding: str) -> Iterator[tuple[int, Row | RowProblem]]:
    csv.field_size_limit(1 << 30)
    delimiter = _delimiter(path, encoding)
    with _open_binary(path) as handle:
        stream = _LineCountingReader(handle, str(path), encoding)
        reader = csv.DictReader(stream, delimiter=delimiter)
        start = 2
        try:
            for row in reader:
                bad = next((stream.bad.pop(n) for n in range(start, stream.line + 1) if n in stream.bad), None)
                if bad is not None:
                    yield start, _undecodable(path, start, encoding, bad)
                elif None in row:
                    yield start, RowProblem(str(path), start, None, "more values than header columns")
                else:
                    yield start, dict(row)
                start = stream.line + 1
        except csv.Error as exc:
            raise RowProblem(str(path), stream.line, None, f"malformed CSV: {exc}") from None


def _parquet_files(folder: Path) -> list[Path]:
    """The shards of a dataset folder as the Hub holds it (``data/train-00000-of-00001.parquet``)."""
    if (folder / "dataset_info.json").exists() or (folder / "dataset_dict.json").exists():
        return []  # a save_to_disk folder: the datasets reader knows its layout
    return sorted((folder / "data").glob("*.parquet")) or sorted(folder.glob("*.parquet"))


def _read_parquet(path: Path, encoding: str) -> Iterator[tuple[int, Row | RowProblem]]:
    """One Parquet file (``.parquet.gz`` too), or every shard of a Hub-layout folder in order (numbered on)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    number = 0
    for shard in _parquet_files(path) if path.is_dir() else [path]:
        try:
            if shard.suffix.lower() in _COMPRESSED:  # .parquet.gz: Parquet needs random access, so in memory
                with _open_binary(shard) as handle:
                    parquet = pq.ParquetFile(pa.BufferReader(handle.read()))
            else:
                parquet = pq.ParquetFile(shard)
        except Exception as exc:
            raise SourceError(
                str(shard),
                f"not a readable Parquet file ({str(exc).splitlines()[0][:120]})",
                "Check that the file is complete, or name its real type with --file-type.",
            ) from None
        for batch in parquet.iter_batches(batch_size=2000):
            for row in batch.to_pylist():
                number += 1
                yield number, row


def _load_hf(source: str, split: str | None) -> Any:
    try:
        import datasets
    except ImportError:
        raise SourceError(
            source, "reading a datasets source needs the hf extra", "pip install 'prefloop[hf]'"
        ) from None
    path = Path(source)
    try:
        saved = (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()
        if path.is_dir() and saved:
            loaded = datasets.load_from_disk(str(path))
        elif path.is_dir():
            raise SourceError(
                source,
                "a folder that is neither a saved dataset nor an Argilla export",
                "Pass a file inside it, or a folder written by save_to_disk / to_disk.",
            )
        else:
            loaded = datasets.load_dataset(source.removeprefix(HUB_PREFIX), split=split, streaming=True)
    except SourceError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SourceError(
            source,
            f"could not load the dataset: {first}",
            "Check the folder (dataset_info.json, state.json) or the hub name and --hf-split.",
        ) from None
    if isinstance(loaded, datasets.DatasetDict | datasets.IterableDatasetDict):
        name = split or ("train" if "train" in loaded else next(iter(loaded)))
        loaded = loaded[name]
    return loaded


def _read_hf(source: str, split: str | None) -> Iterator[tuple[int, Row | RowProblem]]:
    for number, row in enumerate(_load_hf(source, split), start=1):
        yield number, dict(row)


def tool_settings(source: str) -> dict[str, Any] | None:
    """An Argilla export's ``.argilla/settings.json`` (or ``settings.json``) beside or above ``source``."""
    path = Path(source)
    for folder in (path, path.parent, path.parent.parent) if path.exists() else ():
        for candidate in (folder / ".argilla" / "settings.json", folder / "settings.json"):
            if candidate.is_file():
                try:
                    settings = json.loads(candidate.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise SourceError(
                        str(candidate), f"unreadable Argilla settings ({exc})", "Check the export."
                    ) from None
                return settings if isinstance(settings, dict) and "questions" in settings else None
    return None


_READERS = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv, "parquet": _read_parquet}


def _guarded(rows: Iterator[tuple[int, Row | RowProblem]], source: str) -> Iterator[tuple[int, Row | RowProblem]]:
    """Turn a decompressor's failure (a ``.gz`` that is not gzip) into one line, not a traceback."""
    count = 0
    try:
        for item in rows:
            count += 1
            yield item
    except (RowProblem, SourceError):
        raise
    except _BAD_STREAM as exc:
        raise SourceError(
            source,
            f"cannot be decompressed or read ({exc})",
            "Check that the file is complete and that its suffix matches its content.",
        ) from None
    if count == 0:
        raise SourceError(source, "no rows (the input is empty)", "Check that this is the file you meant.")


def read_rows(
    source: str, fmt: str | None = None, split: str | None = None, *, encoding: str = "utf-8", hub: bool = False
) -> Iterator[tuple[int, Row | RowProblem]]:
    """Yield ``(line, row)`` from any supported source, ``(line, RowProblem)`` for a row that
    cannot be read (reading goes on past it).

    Raises ``SourceError`` when the source as a whole is unreadable or empty, ``RowProblem``
    when reading cannot continue past one line (a CSV quote left open).
    """
    fmt = require_source(source, fmt, hub)
    if fmt == "hf":
        yield from _guarded(_read_hf(source, split), source)
        return
    path = Path(source)
    if fmt not in _READERS:
        raise SourceError(source, f"unknown file type {fmt!r}", f"Use one of {', '.join(FORMATS)}.")
    yield from _guarded(_READERS[fmt](path, encoding), source)
