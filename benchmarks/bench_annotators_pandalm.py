"""Annotator quality on the PandaLM test set: three human annotators, 999 pairs (issue #15).

Reads ``pandalm-testset-v1.json`` directly (``annotator1..3``: 0 = tie, 1 = response1, 2 =
response2; response1 is the one shown first) and reports, per annotator, what ``prefloop
annotators`` reports, plus two checks of the aggregation:

* leave-one-annotator-out: predict each annotator's label from the other two, by majority
  (a 1–1 split has no answer) and by Dawid–Skene fitted without that annotator's labels;
* the end-to-end path: ``prefloop ingest`` of the file into a fresh SQLite store, then
  ``prefloop annotators --json`` (timed).

    python benchmarks/bench_annotators_pandalm.py [--data ../shared/data/pandalm-testset-v1.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from prefloop.annotators import (
    CLASSES,
    Annotation,
    annotator_report,
    dawid_skene,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    majority_vote,
    vote_counts,
)

VOTE = {1: 0, 2: 1, 0: 2}  # PandaLM code → class index (a = response1, b = response2, tie)
NAMES = ("annotator1", "annotator2", "annotator3")


def load(path: Path) -> np.ndarray:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return np.array([[VOTE[int(r[n])] for n in NAMES] for r in rows], dtype=np.int64)


def leave_one_out(labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Predict each annotator from the other two: majority vs Dawid–Skene (same items, all of them)."""
    out = {}
    for u, name in enumerate(NAMES):
        others = np.delete(labels, u, axis=1)
        target = labels[:, u]
        mv = majority_vote(others)
        ds = dawid_skene(others).hard_labels()
        split = mv < 0
        out[name] = {
            "majority_acc": round(float((mv == target).mean()), 4),
            "dawid_skene_acc": round(float((ds == target).mean()), 4),
            "majority_acc_where_decided": round(float((mv[~split] == target[~split]).mean()), 4),
            "dawid_skene_acc_on_splits": round(float((ds[split] == target[split]).mean()), 4),
            "splits": int(split.sum()),
        }
    return out


def end_to_end(path: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "pandalm.db")
        t0 = time.perf_counter()
        ingest = subprocess.run(
            [sys.executable, "-m", "prefloop.cli", "--db", db, "ingest", str(path)], capture_output=True, text=True
        )
        t1 = time.perf_counter()
        if ingest.returncode != 0:
            return {"error": ingest.stderr.strip().splitlines()[-1:]}
        report = subprocess.run(
            [sys.executable, "-m", "prefloop.cli", "--db", db, "annotators", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        t2 = time.perf_counter()
        data = json.loads(report.stdout)
    return {
        "ingest_s": round(t1 - t0, 2),
        "annotators_s": round(t2 - t1, 2),
        "ingest": ingest.stdout.strip(),
        "items": data["items"],
        "krippendorff_alpha": data["krippendorff_alpha"],
        "fleiss_kappa": data["fleiss_kappa"],
        "reliability": {r["annotator"]: r["reliability"] for r in data["annotators"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parents[1]
    parser.add_argument("--data", default=str(here.parent / "shared" / "data" / "pandalm-testset-v1.json"))
    args = parser.parse_args()
    labels = load(Path(args.data))
    # the report's own path: response1 is shown first (swapped = False) for every annotator
    annotations = [
        Annotation(pair_id=i, annotator=NAMES[u], choice=CLASSES[labels[i, u]], swapped=False)
        for i in range(labels.shape[0])
        for u in range(3)
    ]
    t0 = time.perf_counter()
    report = annotator_report(annotations)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "pairs": int(labels.shape[0]),
                "report_s": round(seconds, 3),
                "krippendorff_alpha": report["krippendorff_alpha"],
                "fleiss_kappa": report["fleiss_kappa"],
                "unanimous": int((vote_counts(labels, 3).max(axis=1) == 3).sum()),
                "all_three_differ": int((vote_counts(labels, 3).max(axis=1) == 1).sum()),
            }
        )
    )
    for row in report["annotators"]:
        print(
            json.dumps(
                {
                    k: row[k]
                    for k in (
                        "annotator",
                        "labels",
                        "agreement_with_consensus",
                        "reliability",
                        "discrimination",
                        "tie_rate",
                        "position_bias",
                        "kappa",
                        "flagged",
                        "reasons",
                    )
                }
            )
        )
    asym = dawid_skene(labels, symmetric=False)
    for u, name in enumerate(NAMES):
        c = asym.confusion[u]
        print(
            json.dumps(
                {
                    "annotator": name,
                    "asymmetric_confusion": {
                        t: {g: round(float(c[i, j]), 3) for j, g in enumerate(CLASSES)} for i, t in enumerate(CLASSES)
                    },
                }
            )
        )
    print(
        json.dumps(
            {
                "dawid_skene_priors": dict(zip(CLASSES, np.round(dawid_skene(labels).priors, 3).tolist(), strict=True)),
                "ds_vs_majority_differ": int((dawid_skene(labels).hard_labels() != majority_vote(labels)).sum()),
                "majority_undecided": int((majority_vote(labels) < 0).sum()),
            }
        )
    )
    print(json.dumps({"leave_one_annotator_out": leave_one_out(labels)}))
    items = [[CLASSES[c] for c in row] for row in labels]
    assert abs(report["krippendorff_alpha"] - krippendorff_alpha_nominal(items)) < 1e-4
    assert abs(report["fleiss_kappa"] - fleiss_kappa(vote_counts(labels, 3))) < 1e-4
    print(json.dumps({"end_to_end": end_to_end(Path(args.data))}))


if __name__ == "__main__":
    main()
