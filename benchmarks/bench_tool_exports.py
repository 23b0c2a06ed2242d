"""#26: how fast `prefloop ingest` reads Label Studio exports, laid out as Label Studio 1.23 writes them.

Writes N tasks with two annotations each in the JSON, JSON_MIN and CSV layouts (the shapes the
real server exports, see tests/backends/test_exports_label_studio.py) and ingests each into a
fresh SQLite store, printing rows, pairs, labels and seconds.

    python benchmarks/bench_tool_exports.py --tasks 5000 --shape rlhf   # RLHF template: answer1/answer2, Pairwise
    python benchmarks/bench_tool_exports.py --tasks 5000 --shape own    # prefloop's template: left/right, Choices
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from prefloop.data.ingest import ingest
from prefloop.store.db import open_store

STAMP = "2026-12-01T10:00:00Z"


def _layouts(n: int, own: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    k1, k2 = ("left", "right") if own else ("answer1", "answer2")
    tasks, rows = [], []
    for i in range(n):
        data = {"prompt": f"Question {i}?", k1: f"First answer {i}.", k2: f"Second answer number {i}."}
        annotations = []
        for user in (2, 3):
            side = "left" if (i + user) % 3 else "right"
            if own:
                result = {"type": "choices", "from_name": "preference", "to_name": "prompt"}
                result["value"] = {"choices": ["a" if side == "left" else "b"]}
                flat: Any = "a" if side == "left" else "b"
            else:
                result = {"type": "pairwise", "from_name": "comparison", "to_name": "answer1"}
                result["value"] = {"selected": side}
                flat = [{"selected": side}]
            ann_id = i * 10 + user
            annotations.append(
                {
                    "id": ann_id,
                    "completed_by": user,
                    "result": [result],
                    "was_cancelled": False,
                    "lead_time": 3.0,
                    "created_at": STAMP,
                    "updated_at": STAMP,
                }
            )
            row = {"id": i, **data, str(result["from_name"]): flat, "annotator": user, "annotation_id": ann_id}
            rows.append({**row, "created_at": STAMP, "updated_at": STAMP, "lead_time": 3.0})
        tasks.append({"id": i, "data": data, "annotations": annotations, "predictions": []})
    return tasks, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--shape", choices=["rlhf", "own"], default="rlhf")
    args = parser.parse_args()
    tasks, rows = _layouts(args.tasks, args.shape == "own")
    folder = Path(tempfile.mkdtemp(prefix="bench-tool-exports."))
    (folder / "export.json").write_text(json.dumps(tasks))
    (folder / "export-min.json").write_text(json.dumps(rows))
    with (folder / "export.csv").open("w", newline="") as handle:  # as Label Studio writes it: JSON-encoded values
        writer = csv.DictWriter(handle, fieldnames=sorted(rows[0]), quoting=csv.QUOTE_NONNUMERIC)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()})
    for name in ("export.json", "export-min.json", "export.csv"):
        engine = open_store(f"sqlite:///{folder / (name + '.db')}", create=True)
        started = time.perf_counter()
        report = ingest(engine, str(folder / name), progress=False)
        took = time.perf_counter() - started
        print(
            f"{args.shape} {name}: {report.format} rows={report.rows} pairs={report.pairs_added} "
            f"labels={report.labels_added} in {took:.1f} s ({report.labels_added / took:,.0f} labels/s)"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
