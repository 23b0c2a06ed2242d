"""Build the real-data demo sample shipped inside the package (``prefloop/demo_data``).

Reads the three HH-RLHF test files of ``../shared/data`` (Anthropic, MIT licence), keeps the
usable pairs (two different, non-empty final responses; the same rule ``prefloop ingest``
applies), and selects a deterministic subset from each file: the pairs whose SHA-256 of
``prompt \\0 chosen \\0 rejected`` is smallest, i.e. a uniform sample that does not depend on
file order and is reproducible by anyone with the same files. Output, one JSON object per line:
``{"prompt", "chosen", "rejected", "dimension", "subset"}`` — the TRL explicit-prompt layout that
``prefloop ingest`` reads, plus the HH dimension (helpful / harmless) and the source file.

    python scripts/build_demo_sample.py [--shared ../shared/data] [--out prefloop/demo_data]

Running it twice gives a byte-identical file (gzip mtime is fixed at 0).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
from pathlib import Path

from prefloop.data.readers import read_rows
from prefloop.data.shapes import ShapeOptions, row_to_pairs
from prefloop.errors import RowProblem

ROOT = Path(__file__).resolve().parents[1]

# (file, dimension, subset name, pairs taken)
SOURCES = [
    ("hh-rlhf-helpful-base-test.jsonl.gz", "helpful", "helpful-base", 1000),
    ("hh-rlhf-helpful-rejection-sampled-test.jsonl.gz", "helpful", "helpful-rejection-sampled", 1000),
    ("hh-rlhf-harmless-base-test.dev.jsonl.gz", "harmless", "harmless-base", 500),
]
SAMPLE = "hh_rlhf_sample.jsonl.gz"


def _usable(path: Path) -> tuple[list[dict[str, str]], int]:
    """Pairs of one HH file as (prompt, chosen, rejected); degenerate rows skipped and counted."""
    out, skipped = [], 0
    for line, row in read_rows(str(path), "jsonl", None):
        try:
            (pair,) = row_to_pairs(row, path.name, line, ShapeOptions())
        except RowProblem:
            skipped += 1
            continue
        if not pair.response_a.strip() or not pair.response_b.strip():
            skipped += 1  # an empty final turn: a real HH label, but useless for a demo
            continue
        out.append({"prompt": pair.prompt, "chosen": pair.response_a, "rejected": pair.response_b})
    return out, skipped


def _rank(pair: dict[str, str]) -> str:
    return hashlib.sha256("\0".join((pair["prompt"], pair["chosen"], pair["rejected"])).encode()).hexdigest()


def build(shared: Path, out: Path) -> dict[str, object]:
    rows: list[dict[str, str]] = []
    counts = {}
    for name, dimension, subset, take in SOURCES:
        pairs, skipped = _usable(shared / name)
        chosen = sorted(pairs, key=_rank)[:take]
        rows.extend({**p, "dimension": dimension, "subset": subset} for p in sorted(chosen, key=_rank))
        counts[subset] = {"usable": len(pairs), "skipped": skipped, "taken": len(chosen)}
    out.mkdir(parents=True, exist_ok=True)
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as handle:
        for row in rows:
            handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    (out / SAMPLE).write_bytes(raw.getvalue())
    digest = hashlib.sha256(raw.getvalue()).hexdigest()
    manifest = {
        "file": SAMPLE,
        "pairs": len(rows),
        "sha256": digest,
        "sources": counts,
        "selection": "per file: the usable pairs with the smallest sha256(prompt\\0chosen\\0rejected)",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "prefloop" / "demo_data")
    args = parser.parse_args()
    manifest = build(args.shared, args.out)
    size = (args.out / SAMPLE).stat().st_size
    print(json.dumps({**manifest, "bytes": size}, indent=2))


if __name__ == "__main__":
    main()
