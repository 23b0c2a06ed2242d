"""#25's list, each case with its exit code and a message naming the value, the flag and what is allowed."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
from pathlib import Path

from tests.clirun import prefloop

ROWS = [{"prompt": f"p{i}", "response_a": f"a{i}", "response_b": f"b{i}", "label": "ab"[i % 2]} for i in range(10)]


def _stats(folder: Path, db: str = "store.db") -> dict:
    return json.loads(prefloop(folder, "--db", db, "stats", "--json", check=True).stdout)


def test_a_store_path_with_non_ascii_letters_or_a_percent_is_taken_as_written(tmp_path: Path) -> None:
    for db in ("données/sté ü.db", "a%20b.db"):
        made = prefloop(tmp_path, "--db", db, "init")
        assert made.returncode == 0, made.stderr
        assert (tmp_path / db).is_file(), f"{db} is created under that very name"
        assert _stats(tmp_path, db)["pairs"] == 0
    assert not (tmp_path / "a b.db").exists(), "a % in a path is not URL-decoded"


def test_an_unknown_encoding_is_exit_2_naming_it_and_creates_no_store(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    run = prefloop(tmp_path, "--db", "new.db", "ingest", "x.jsonl", "--encoding", "bogus")
    assert run.returncode == 2, run.stderr
    assert "'--encoding'" in run.stderr and "'bogus'" in run.stderr and "utf-8" in run.stderr, run.stderr
    assert not (tmp_path / "new.db").exists()


def test_annotators_out_naming_an_existing_file_is_exit_2(tmp_path: Path) -> None:
    prefloop(tmp_path, "init", check=True)
    (tmp_path / "taken.json").write_text("{}")
    run = prefloop(tmp_path, "annotators", "--out", "taken.json")
    assert run.returncode == 2 and "'--out'" in run.stderr and "'taken.json' is a file" in run.stderr, run.stderr
    assert (tmp_path / "taken.json").read_text() == "{}"


def test_an_unknown_backbone_is_exit_2_naming_the_flag_and_what_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    prefloop(tmp_path, "ingest", "x.jsonl", check=True)
    run = prefloop(tmp_path, "train", "--backbone", "nobody/no-such-model", env=None)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "'nobody/no-such-model'" in run.stderr and "--backbone" in run.stderr, run.stderr
    assert "a local folder holding a transformers model" in run.stderr and "unexpected" not in run.stderr


def test_skip_invalid_skips_malformed_json_lines_and_all_rejected_is_exit_2(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in ROWS]
    lines[3], lines[7] = '{"prompt": "broken', "not json"
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    strict = prefloop(tmp_path, "--db", "new.db", "ingest", "m.jsonl")
    assert strict.returncode == 2 and "line 4" in strict.stderr and "line 8" in strict.stderr, strict.stderr
    assert "at at" not in strict.stderr
    assert not (tmp_path / "new.db").exists(), "a failed ingest into a new path leaves no store"
    assert not (tmp_path / "m.jsonl.rejected.jsonl").exists()

    kept = prefloop(tmp_path, "ingest", "m.jsonl", "--skip-invalid")
    assert kept.returncode == 0, kept.stderr
    assert _stats(tmp_path, "prefloop.db")["pairs"] == 8
    rejected = (tmp_path / "m.jsonl.rejected.jsonl").read_text().splitlines()
    assert [json.loads(r)["line"] for r in rejected] == [4, 8]

    (tmp_path / "bad.jsonl").write_text('{"prompt": "p", "response_a": "x", "response_b": "y", "label": "zz"}\nnope\n')
    none = prefloop(tmp_path, "ingest", "bad.jsonl", "--skip-invalid")
    assert none.returncode == 2 and "all 2 row(s) were rejected, nothing was written" in none.stderr, none.stderr
    assert "nothing new" not in none.stdout + none.stderr


def test_skip_invalid_skips_csv_rows_with_extra_values_or_bad_bytes_and_writes_no_empty_rejects(
    tmp_path: Path,
) -> None:
    (tmp_path / "c.csv").write_bytes(
        b"prompt,response_a,response_b,label\np1,a1,b1,a\np2,a2,b2,a,EXTRA\np3,a\xff3,b3,b\np4,a4,b4,b\n"
    )
    run = prefloop(tmp_path, "ingest", "c.csv", "--skip-invalid")
    assert run.returncode == 0, run.stderr
    reasons = [json.loads(r) for r in (tmp_path / "c.csv.rejected.jsonl").read_text().splitlines()]
    assert [r["line"] for r in reasons] == [3, 4]
    assert "more values than header columns" in reasons[0]["message"] and "--encoding" in reasons[1]["message"]
    (tmp_path / "ok.csv").write_text("prompt;response_a;response_b;label\nq1;x1;y1;a\nq2;x2;y2;b\n")
    semi = prefloop(tmp_path, "ingest", "ok.csv", "--skip-invalid")
    assert semi.returncode == 0 and "2 new pairs" in semi.stdout, semi.stdout + semi.stderr
    assert not (tmp_path / "ok.csv.rejected.jsonl").exists(), "no rejects file when nothing was rejected"


def test_parquet_gz_is_read(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({k: [r[k] for r in ROWS] for k in ROWS[0]}), buffer)
    (tmp_path / "d.parquet.gz").write_bytes(gzip.compress(buffer.getvalue()))
    run = prefloop(tmp_path, "ingest", "d.parquet.gz")
    assert run.returncode == 0 and "10 new pairs" in run.stdout, run.stdout + run.stderr


def test_new_stores_and_reports_are_private_unless_the_umask_is_stricter(tmp_path: Path) -> None:
    before = os.umask(0o022)
    try:
        prefloop(tmp_path, "--db", "new/store.db", "init", check=True)
        prefloop(tmp_path, "--db", "new/store.db", "annotators", "--out", "report", check=True)
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "new" / "store.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "report").stat().st_mode) == 0o700
    for written in (tmp_path / "report").iterdir():
        assert stat.S_IMODE(written.stat().st_mode) & 0o077 == 0, written
