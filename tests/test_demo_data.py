"""The packaged demo sample: it loads, it is what scripts/build_demo_sample.py says, and it carries its licence."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
from collections import Counter
from pathlib import Path

from prefloop.data.ingest import read_valid_records
from prefloop.resources import demo_sample

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _script():
    spec = importlib.util.spec_from_file_location("build_demo_sample", ROOT / "scripts" / "build_demo_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_matches_its_manifest_and_selection_rule() -> None:
    script = _script()
    path = demo_sample()
    folder = path.parent
    manifest = json.loads((folder / "manifest.json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest["sha256"]
    assert path.stat().st_size <= 1.5 * 1024 * 1024
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert len(rows) == manifest["pairs"] == sum(take for *_, take in script.SOURCES)
    by_subset = Counter(r["subset"] for r in rows)
    for _name, dimension, subset, take in script.SOURCES:
        mine = [r for r in rows if r["subset"] == subset]
        assert by_subset[subset] == take == manifest["sources"][subset]["taken"]
        assert {r["dimension"] for r in mine} == {dimension}
        ranks = [script._rank(r) for r in mine]
        assert ranks == sorted(ranks)  # the selection rule: smallest hashes first, in order
        assert all(r["chosen"].strip() and r["rejected"].strip() and r["chosen"] != r["rejected"] for r in mine)
        assert all(r["prompt"].startswith("\n\nHuman:") and r["prompt"].endswith("\n\nAssistant:") for r in mine)
    # readable by the same reader as `prefloop ingest`, every pair labelled chosen-over-rejected
    records = read_valid_records(str(path), strict=True)
    assert len(records) == len(rows) and {r.label.value for r in records} == {"a"}
    assert Counter(r.dimension for r in records) == {"helpful": 2000, "harmless": 500}


def test_sample_carries_the_hh_licence_and_provenance() -> None:
    folder = demo_sample().parent
    licence = (folder / "LICENSE").read_text()
    assert "MIT License" in licence and "Copyright (c) 2022 Anthropic" in licence
    provenance = (folder / "PROVENANCE.md").read_text()
    assert "scripts/build_demo_sample.py" in provenance and "HH-RLHF" in provenance


def test_the_script_rebuilds_the_same_bytes_from_the_shared_files(tmp_path: Path) -> None:
    """Byte-identical rebuild where the source files exist; elsewhere the script's own output on
    HH files rebuilt from the sample must reproduce the sample (the rule is a fixed point)."""
    script = _script()
    shared = SHARED
    if not all((SHARED / name).exists() for name, *_ in script.SOURCES):
        shared = tmp_path / "shared"
        shared.mkdir()
        with gzip.open(demo_sample(), "rt", encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle]
        for name, _dim, subset, _take in script.SOURCES:
            with gzip.open(shared / name, "wt", encoding="utf-8") as out:
                for r in rows:
                    if r["subset"] == subset:
                        out.write(
                            json.dumps(
                                {"chosen": f"{r['prompt']} {r['chosen']}", "rejected": f"{r['prompt']} {r['rejected']}"}
                            )
                            + "\n"
                        )
    manifest = script.build(shared, tmp_path / "out")
    assert (tmp_path / "out" / script.SAMPLE).read_bytes() == demo_sample().read_bytes()
    assert manifest["sha256"] == hashlib.sha256(demo_sample().read_bytes()).hexdigest()
