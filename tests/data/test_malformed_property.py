"""Property: whatever malformed rows a file holds, ``ingest --skip-invalid`` exits 0 or 2, never with an
unexpected error, and a failed ingest leaves the store as it was.

Hypothesis writes files for every reader (JSONL, JSON array, CSV, TSV, Parquet) mixing valid rows
with malformed ones: broken JSON, non-objects, missing or empty fields, unknown labels, extra CSV
values, bytes that are not UTF-8, markup and control characters.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.clirun import prefloop

FIELDS = ("prompt", "response_a", "response_b", "label")
text = st.text(min_size=1, max_size=12).filter(lambda s: s.strip())
valid = st.fixed_dictionaries(
    {"prompt": text, "response_a": text, "response_b": text, "label": st.sampled_from(["a", "b", "tie"])}
)
broken = st.one_of(
    valid.map(lambda r: {**r, "label": "zzz"}),
    valid.map(lambda r: {k: v for k, v in r.items() if k != "response_b"}),
    valid.map(lambda r: {**r, "prompt": ""}),
    valid.map(lambda r: {**r, "response_b": r["response_a"]}),
    valid.map(lambda r: {**r, "prompt": "[/dim]\x00\x1b[31m"}),
    st.just('RAW:{"prompt": "unterminated'),
    st.just("RAW:[1, 2, 3]"),
    st.just(b"RAW:\xff\xfe not utf-8"),
    st.just("EXTRA"),
)
rows_strategy = st.lists(st.one_of(valid, broken), min_size=1, max_size=8)


def _line(row: object, kind: str) -> bytes:
    if isinstance(row, bytes):
        return row.removeprefix(b"RAW:")
    if isinstance(row, str):
        if row == "EXTRA":
            return (
                (
                    '{"prompt": "p", "response_a": "x", "response_b": "y", "label": "a", "x": 1}'
                    if kind == "jsonl"
                    else "p,x,y,a,surplus"
                ).encode()
                if kind != "tsv"
                else b"p\tx\ty\ta\tsurplus"
            )
        return row.removeprefix("RAW:").replace("\n", " ").encode()
    if kind == "jsonl":
        return json.dumps(row).encode()
    out = io.StringIO()
    csv.writer(out, delimiter="\t" if kind == "tsv" else ",", lineterminator="").writerow(
        [row.get(f, "") for f in FIELDS]  # type: ignore[union-attr]
    )
    return out.getvalue().encode()


def _write(folder: Path, rows: list[object], kind: str) -> Path:
    if kind == "json":
        items = [r if isinstance(r, dict) else (r if not isinstance(r, bytes) else r.decode("latin-1")) for r in rows]
        path = folder / "data.json"
        path.write_text(json.dumps(items))
        return path
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        dicts = [r for r in rows if isinstance(r, dict)] or [{"prompt": "only", "response_a": "x"}]
        table = pa.table({f: [str(r.get(f, "")) or None for r in dicts] for f in FIELDS})
        path = folder / "data.parquet"
        pq.write_table(table, path)
        return path
    path = folder / f"data.{kind}"
    header = b"" if kind == "jsonl" else ("\t" if kind == "tsv" else ",").join(FIELDS).encode() + b"\n"
    path.write_bytes(header + b"\n".join(_line(r, kind) for r in rows) + b"\n")
    return path


def _counts(folder: Path) -> tuple[int, int]:
    stats = json.loads(prefloop(folder, "--db", "store.db", "stats", "--json", check=True).stdout)
    return stats["pairs"], stats["labels"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, kind=st.sampled_from(["jsonl", "json", "csv", "tsv", "parquet"]))
def test_malformed_rows_exit_0_or_2_never_unexpected_and_a_failure_changes_nothing(
    rows: list[object], kind: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed = folder / "seed.jsonl"
        seed.write_text(json.dumps({"prompt": "seed", "response_a": "s1", "response_b": "s2", "label": "a"}) + "\n")
        prefloop(folder, "--db", "store.db", "ingest", str(seed), check=True)
        before = _counts(folder)
        source = _write(folder, rows, kind)
        run = prefloop(folder, "--db", "store.db", "ingest", str(source), "--skip-invalid")
        assert run.returncode in (0, 2), run.stdout + run.stderr
        assert "unexpected" not in run.stderr and "Traceback" not in run.stderr, run.stderr
        if run.returncode == 2:
            assert _counts(folder) == before, "a failed ingest leaves the store unchanged"
            assert "nothing was written" in run.stderr, run.stderr
        else:
            assert _counts(folder) >= before
