"""Explicit label semantics for files of no known format, degenerate-row counting for readers,
and the real PandaLM and HH files from ../shared/data when they are on this machine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine

from prefloop.data.fields import get_path
from prefloop.data.ingest import read_records, read_valid_records
from prefloop.errors import IngestError
from prefloop.types import Choice
from tests.clirun import prefloop
from tests.data.formats_helpers import raw_verdicts, run, write_jsonl

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
PANDALM = SHARED / "pandalm-testset-v1.json"
HH_HELPFUL = SHARED / "hh-rlhf-helpful-base-test.jsonl.gz"


def test_label_map_dimension_and_annotator(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = [
        {"q": "q1", "x": "first", "y": "second", "pref": 1},
        {"q": "q2", "x": "left", "y": "right", "pref": 0},
        {"q": "q3", "x": "this", "y": "that", "pref": 2},
    ]
    mapping = {"prompt": "q", "response_a": "x", "response_b": "y", "label": "pref"}
    run(
        sqlite_engine,
        write_jsonl(tmp_path / "m.jsonl", rows),
        mapping=mapping,
        label_map={"1": Choice.A, "0": Choice.B, "2": Choice.TIE},
        dimension="helpful",
        annotator="team-a",
    )
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("first", "team-a", "helpful", None),
        ("right", "team-a", "helpful", None),
        ("tie", "team-a", "helpful", None),
    ]


@pytest.mark.parametrize(
    ("decoder", "rows", "expected"),
    [
        ("signed", [{"label": 2.0}, {"label": -1}, {"label": 0}], [("A", 2.0), ("B", 1.0), ("tie", None)]),
        ("signed-b", [{"label": 3}, {"label": -2}], [("B", 3.0), ("A", 2.0)]),
        (
            "onehot",
            [{"label_a": 1, "label_b": 0, "label_tie": 0}, {"label_a": 0, "label_b": 0, "label_tie": 1}],
            [("A", None), ("tie", None)],
        ),
        ("rank", [{"rank_a": 2, "rank_b": 1}, {"rank_a": 1, "rank_b": 3}], [("B", None), ("A", None)]),
    ],
)
def test_label_decoders(
    sqlite_engine: Engine, tmp_path: Path, decoder: str, rows: list[dict], expected: list[tuple[str, float | None]]
) -> None:
    full = [{"prompt": f"q{i}", "response_a": f"A{i}", "response_b": f"B{i}", **r} for i, r in enumerate(rows)]
    run(sqlite_engine, write_jsonl(tmp_path / "d.jsonl", full), label_decoder=decoder)
    got = {v[0] if v[0] == "tie" else v[0][0]: v[3] for v in raw_verdicts(sqlite_engine, tmp_path)}
    assert got == dict(expected)


def test_nested_paths_and_json_columns_in_map(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = [
        {
            "info": {"post": "My cat ate my homework."},
            "summaries": [{"text": "Cat ate it."}, {"text": "Dogs."}],
            "choice": 1,
            "meta": json.dumps({"who": "w7"}),
        }
    ]
    mapping = {
        "prompt": "info.post",
        "response_a": "summaries.0.text",
        "response_b": "summaries.1.text",
        "label": "choice",
        "annotator": "json:meta.who",
    }
    run(
        sqlite_engine,
        write_jsonl(tmp_path / "n.jsonl", rows),
        mapping=mapping,
        label_map={"0": Choice.A, "1": Choice.B},
    )
    assert raw_verdicts(sqlite_engine, tmp_path) == [("Dogs.", "w7", "overall", None)]


def test_get_path_prefers_a_dotted_column_name() -> None:
    row = {"preference.responses": ["a"], "preference": {"responses": ["b"]}, "turns": '[{"content": "hi"}]'}
    assert get_path(row, "preference.responses") == ["a"]
    assert get_path(row, "turns.0.content") == "hi"


def test_read_records_skips_and_counts_degenerate_rows(tmp_path: Path) -> None:
    rows = [
        {"chosen": "\n\nHuman: a\n\nAssistant: yes", "rejected": "\n\nHuman: a\n\nAssistant: no"},
        {"chosen": "\n\nHuman: b\n\nAssistant: same", "rejected": "\n\nHuman: b\n\nAssistant: same"},
        {"chosen": "no dialogue here", "rejected": "nor here"},
    ]
    path = str(write_jsonl(tmp_path / "hh.jsonl", rows))
    result = read_records(path)
    assert (len(result.records), result.degenerate, result.invalid, result.format) == (1, 1, 1, "hh-rlhf")
    with pytest.raises(IngestError, match="line 3"):
        read_valid_records(path, strict=True)
    assert len(read_valid_records(str(write_jsonl(tmp_path / "ok.jsonl", rows[:2])), strict=True)) == 1, (
        "strict is about invalid rows; degenerate rows are still skipped (eval --data relies on it)"
    )


def hh_helpful_file(tmp_path: Path) -> tuple[Path, tuple[int, int, int, int]]:
    """The real HH helpful-base file and its (rows, pairs, degenerate, invalid); where this machine has
    no ../shared, dialogues rebuilt from the packaged real helpful-base pairs plus two identical rows."""
    if HH_HELPFUL.exists():
        return HH_HELPFUL, (2354, 2352, 2, 0)
    import gzip

    from prefloop.resources import demo_sample

    rows = []
    with gzip.open(demo_sample(), "rt", encoding="utf-8") as handle:
        for line in handle:
            r = json.loads(line)
            if r["subset"] == "helpful-base":
                rows.append({"chosen": f"{r['prompt']} {r['chosen']}", "rejected": f"{r['prompt']} {r['rejected']}"})
    same = rows[0]["chosen"]
    rows[10:10] = [{"chosen": same, "rejected": same}, {"chosen": rows[5]["rejected"], "rejected": rows[5]["rejected"]}]
    path = tmp_path / "hh-helpful-from-sample.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, (len(rows), len(rows) - 2, 2, 0)


def test_real_hh_helpful_file_has_two_degenerate_rows(tmp_path: Path) -> None:
    path, expected = hh_helpful_file(tmp_path)
    result = read_records(str(path))
    assert (result.rows, len(result.records), result.degenerate, result.invalid) == expected


def pandalm_file(tmp_path: Path) -> Path:
    """The real PandaLM test set; where this machine has no ../shared, a file in its layout (a JSON array,
    three annotator columns, 0 = tie) written from the dataset's description, with a repeated comparison."""
    if PANDALM.exists():
        return PANDALM
    rows = []
    for i in range(30):
        votes = [(i + j) % 3 for j in range(3)]  # every combination of tie / 1 / 2 appears
        rows.append(
            {
                "idx": i,
                "motivation_app": "demo",
                "cmp_key": "model-x_model-y",
                "instruction": f"Task {i % 25}",
                "input": "" if i % 2 else f"input {i % 25}",
                "response1": f"first answer {i % 25}",
                "response2": f"second answer {i % 25}",
                "annotator1": votes[0],
                "annotator2": votes[1],
                "annotator3": votes[2],
            }
        )
    path = tmp_path / "pandalm-layout.json"
    path.write_text(json.dumps(rows))
    return path


def test_real_pandalm_file_through_the_cli(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return prefloop(tmp_path, "--db", str(tmp_path / "s.db"), *args, check=True)

    source = pandalm_file(tmp_path)
    votes = json.loads(source.read_text())
    n = len(votes)
    if source == PANDALM:
        assert n == 999
    cli("init")
    out = cli("ingest", str(source), "--json")
    report = json.loads(out.stdout)
    assert (report["format"], report["rows"], report["pairs_seen"]) == ("pandalm", n, n)
    assert (report["labels_added"], report["annotators"], report["degenerate"]) == (3 * n, 3, 0)
    stats = json.loads(cli("stats", "--json").stdout)
    assert stats["annotators"] == 3 and stats["labels"] == 3 * n
    ties = sum(r[f"annotator{i}"] == 0 for r in votes for i in (1, 2, 3))
    assert stats["labels_by_choice"]["tie"] == ties > 0
    # rows comparing texts already compared in another row (PandaLM: 136, the same answers from other
    # model pairs) are one stored pair, with every vote kept
    assert stats["pairs"] == len(
        {(r["instruction"], r["input"], frozenset((str(r["response1"]), str(r["response2"])))) for r in votes}
    )
    cli("export", str(tmp_path / "raw.jsonl"), "--kind", "raw")
    raw = [json.loads(x) for x in (tmp_path / "raw.jsonl").read_text().splitlines()]
    assert len(raw) == 3 * n and {r["annotator"] for r in raw} == {f"pandalm:annotator{i}" for i in (1, 2, 3)}


def test_read_records_refuses_label_columns_that_gave_no_label(tmp_path: Path) -> None:
    from prefloop.errors import SourceError

    rows = [{"prompt": "q", "response_a": "x", "response_b": "y", "winner": "model_a"}]
    with pytest.raises(SourceError, match="label-like column"):
        read_records(str(write_jsonl(tmp_path / "w.jsonl", rows)))
