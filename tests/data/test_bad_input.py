"""Every bad input named in issue #12, as a user meets it: `prefloop ingest` exits non-zero with one
clear message (no traceback, no per-row flood, no "invalid row" count for a file-level failure)
and the store is unchanged.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import subprocess
from pathlib import Path

import pytest

from prefloop.data.readers import detect_format
from prefloop.errors import SourceError
from tests import clirun

GOOD = [{"prompt": f"p{i}", "response_a": f"a{i}", "response_b": f"b{i}", "label": "a"} for i in range(3)]


def prefloop(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return clirun.prefloop(cwd, "--db", str(cwd / "store.db"), *args)


def store_counts(cwd: Path) -> tuple[int, int]:
    stats = json.loads(prefloop(cwd, "stats", "--json").stdout)
    return stats["pairs"], stats["labels"]


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """A store holding three labeled pairs, so 'unchanged' is checked against something."""
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in GOOD))
    assert prefloop(tmp_path, "init").returncode == 0
    assert prefloop(tmp_path, "ingest", str(good)).returncode == 0
    return tmp_path


def refused(cwd: Path, *args: str, words: tuple[str, ...]) -> str:
    """Run an ingest that must fail: exit 2 (bad input), one clean message containing ``words``, store unchanged."""
    before = store_counts(cwd)
    proc = prefloop(cwd, "ingest", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert store_counts(cwd) == before, "a refused source must leave the store unchanged"
    return proc.stderr


def test_missing_local_path_is_file_not_found_at_once(seeded: Path) -> None:
    message = refused(seeded, str(seeded / "no_such_file.jsonl"), words=("file not found", "hf://"))
    assert "invalid row" not in message and "--skip-invalid" not in message
    refused(seeded, "someone/not-a-local-folder", words=("file not found",))
    # decided from the path alone: a name is sent to the Hugging Face Hub only with hf:// or --hub
    with pytest.raises(SourceError, match="file not found"):
        detect_format("someone/not-a-local-folder")
    assert detect_format("hf://someone/data") == detect_format("someone/data", hub=True) == "hf"


def test_bom_csv_reads_its_first_column(seeded: Path) -> None:
    path = seeded / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfprompt,response_a,response_b,label\r\nq,x,y,b\r\n")
    proc = prefloop(seeded, "ingest", str(path))
    assert proc.returncode == 0, proc.stderr
    assert store_counts(seeded) == (4, 4)


def test_encoding_error_names_encoding_and_offers_the_option(seeded: Path) -> None:
    path = seeded / "latin.csv"
    path.write_bytes("prompt,response_a,response_b,label\ncafé?,oui,non,a\n".encode("latin-1"))
    message = refused(seeded, str(path), words=("not valid UTF-8", "--encoding", "line 2"))
    assert "1 invalid row(s)" in message, "undecodable bytes are one bad row: --skip-invalid can skip it (#25)"
    proc = prefloop(seeded, "ingest", str(path), "--encoding", "latin-1")
    assert proc.returncode == 0, proc.stderr
    assert store_counts(seeded) == (4, 4)


@pytest.mark.parametrize("suffix", [".bz2", ".xz"])
def test_bz2_and_xz_are_decompressed(seeded: Path, suffix: str) -> None:
    rows = "".join(json.dumps({"prompt": "z", "chosen": "good", "rejected": "bad"}) + "\n" for _ in range(1))
    path = seeded / f"pairs.jsonl{suffix}"
    path.write_bytes((bz2.compress if suffix == ".bz2" else lzma.compress)(rows.encode()))
    proc = prefloop(seeded, "ingest", str(path))
    assert proc.returncode == 0, proc.stderr
    assert store_counts(seeded) == (4, 4)


def test_zstd_is_read_or_refused_clearly(seeded: Path) -> None:
    try:
        import zstandard
    except ImportError:
        path = seeded / "pairs.jsonl.zst"
        path.write_bytes(b"\x28\xb5\x2f\xfd not really")
        refused(seeded, str(path), words=("zstandard", "zstd -d"))
        return
    path = seeded / "pairs.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(json.dumps(GOOD[0] | {"prompt": "zz"}).encode() + b"\n"))
    assert prefloop(seeded, "ingest", str(path)).returncode == 0


def test_not_gzip_gz_is_one_line_no_traceback(seeded: Path) -> None:
    path = seeded / "fake.jsonl.gz"
    path.write_text('{"prompt": "p"}\n')
    message = refused(seeded, str(path), words=("fake.jsonl.gz", "cannot be decompressed"))
    assert "invalid row" not in message


def test_truncated_gzip_is_one_line(seeded: Path) -> None:
    data = gzip.compress(
        ("".join(json.dumps(r | {"prompt": f"t{i}"}) + "\n" for i, r in enumerate(GOOD * 50))).encode()
    )
    path = seeded / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    refused(seeded, str(path), words=("cut.jsonl.gz", "cannot be decompressed"))


def test_bad_parquet_is_one_line(seeded: Path) -> None:
    path = seeded / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    message = refused(seeded, str(path), words=("not a readable Parquet file",))
    assert "invalid row" not in message


def test_dataset_folder_with_a_wrong_card(seeded: Path) -> None:
    folder = seeded / "ds"
    folder.mkdir()
    (folder / "dataset_info.json").write_text("{not json")
    (folder / "state.json").write_text("{}")
    message = refused(seeded, str(folder), words=("could not load the dataset",))
    assert len(message.strip().splitlines()) <= 3


def test_empty_input_is_an_error(seeded: Path) -> None:
    for name, content in (
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n\n"),
        ("empty.json", "[]"),
        ("header_only.csv", "prompt,response_a,response_b\n"),
    ):
        path = seeded / name
        path.write_text(content)
        message = refused(seeded, str(path), words=(name, "no rows"))
        assert "invalid row" not in message


def test_json_array_is_read_as_an_array(seeded: Path) -> None:
    path = seeded / "array.json"
    path.write_text(json.dumps([{"prompt": "arr", "response_a": "x", "response_b": "y", "label": "tie"}], indent=2))
    proc = prefloop(seeded, "ingest", str(path))
    assert proc.returncode == 0, proc.stderr
    assert store_counts(seeded) == (4, 4)


def test_unrecognised_shape_is_one_message_not_one_per_row(seeded: Path) -> None:
    path = seeded / "odd.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}", "answer": "x"}) + "\n" for i in range(50)))
    message = refused(seeded, str(path), words=("unrecognised shape", "--format", "--map"))
    assert message.count("unrecognised shape") == 1
    assert "invalid row" not in message and "--skip-invalid" not in message, "skipping rows cannot help here"
    table = seeded / "odd.csv"
    table.write_text("question,answer\n" + "".join(f"q{i},x\n" for i in range(50)))
    message = refused(seeded, str(table), words=("odd.csv", "unrecognised shape", "found: answer, question"))
    assert message.count("unrecognised shape") == 1 and "invalid row" not in message


def test_same_row_problem_repeated_is_grouped(seeded: Path) -> None:
    path = seeded / "labels.jsonl"
    rows = [{"prompt": f"q{i}", "response_a": "x", "response_b": "y", "label": "maybe"} for i in range(40)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    message = refused(seeded, str(path), words=("40 invalid row(s)", "40 rows: lines 1, 2, 3, 4, 5"))
    assert message.count("unknown label value") == 1


def test_ambiguous_numeric_label_says_how_to_map_it(seeded: Path) -> None:
    """SHP mapped by hand (`--map label=labels`) used to invert every label silently."""
    path = seeded / "shp_by_hand.jsonl"
    rows = [{"history": "Why?", "human_ref_A": "Because A.", "human_ref_B": "Because B.", "labels": 1}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = [
        str(path),
        "--map",
        "prompt=history",
        "--map",
        "response_a=human_ref_A",
        "--map",
        "response_b=human_ref_B",
        "--map",
        "label=labels",
    ]
    refused(seeded, *args, words=("ambiguous numeric label '1'", "--label-map 1=a,0=b"))
    proc = prefloop(seeded, "ingest", *args, "--label-map", "1=a,0=b")
    assert proc.returncode == 0, proc.stderr
    out = seeded / "raw.jsonl"
    assert prefloop(seeded, "export", str(out), "--kind", "raw").returncode == 0
    mine = [json.loads(x) for x in out.read_text().splitlines() if json.loads(x)["prompt"] == "Why?"]
    assert [(r[f"response_{r['choice']}"]) for r in mine] == ["Because A."]


def test_label_like_columns_with_no_label_read_is_an_error(seeded: Path) -> None:
    path = seeded / "winner.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "response_a", "response_b", "winner"])
        writer.writerow(["q", "x", "y", "model_a"])
    refused(seeded, str(path), words=("label-like column(s) winner", "--map label=winner"))
    assert prefloop(seeded, "ingest", str(path), "--map", "label=winner").returncode == 0


def test_degenerate_rows_strict_refuses_them(seeded: Path) -> None:
    path = seeded / "hh.jsonl"
    rows = [
        {"chosen": "\n\nHuman: a\n\nAssistant: yes", "rejected": "\n\nHuman: a\n\nAssistant: no"},
        {"chosen": "\n\nHuman: b\n\nAssistant: same", "rejected": "\n\nHuman: b\n\nAssistant: same"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    refused(seeded, str(path), "--strict", words=("hh.jsonl, line 2", "identical"))
    proc = prefloop(seeded, "ingest", str(path))
    assert proc.returncode == 0
    assert "1 degenerate rows skipped" in proc.stdout
    assert store_counts(seeded) == (4, 4)
