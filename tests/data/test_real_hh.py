"""Real HH-RLHF dialogues ingest as dialogue prefixes: the shared file when this machine has it,
otherwise dialogues rebuilt from the real pairs prefloop ships (so this runs everywhere)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from sqlalchemy import Engine, select

from prefloop.data.ingest import ingest
from prefloop.resources import demo_sample
from prefloop.store.db import session_scope
from prefloop.store.models import Prompt

SHARED_HH = Path(__file__).resolve().parents[3] / "shared" / "data" / "hh-rlhf-harmless-base-test.dev.jsonl.gz"


def hh_file(tmp_path: Path) -> tuple[Path, int]:
    """An HH-layout file (whole chosen/rejected dialogues) and the pairs it must give."""
    if SHARED_HH.exists():
        return SHARED_HH, 1170
    path = tmp_path / "hh-harmless-from-sample.jsonl.gz"
    n = 0
    with gzip.open(demo_sample(), "rt", encoding="utf-8") as src, gzip.open(path, "wt", encoding="utf-8") as out:
        for line in src:
            row = json.loads(line)
            if row["subset"] == "harmless-base":
                dialogue = {
                    "chosen": f"{row['prompt']} {row['chosen']}",
                    "rejected": f"{row['prompt']} {row['rejected']}",
                }
                out.write(json.dumps(dialogue) + "\n")
                n += 1
    return path, n


def test_real_hh_dialogues_ingest_as_dialogue_prefixes(sqlite_engine: Engine, tmp_path: Path) -> None:
    path, expected = hh_file(tmp_path)
    assert expected >= 500
    report = ingest(sqlite_engine, str(path), progress=False)
    assert (report.pairs_added, report.labels_added) == (expected, expected)
    with gzip.open(path, "rt") as handle:
        first = json.loads(handle.readline())
    with session_scope(sqlite_engine) as session:
        prompts = set(session.scalars(select(Prompt.text)))
    assert first["chosen"][: first["chosen"].rfind("\n\nAssistant:") + 12] in prompts
    assert all(p.endswith("\n\nAssistant:") for p in prompts)
    again = ingest(sqlite_engine, str(path), progress=False)
    assert (again.pairs_added, again.labels_added) == (0, 0)
