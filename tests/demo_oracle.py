"""Oracle files for the simulated annotators, from the demo's generated pairs."""

from __future__ import annotations

from pathlib import Path

from prefloop.loop.demo import generated_records, write_oracle


def oracle_path(folder: Path, n: int) -> Path:
    return write_oracle(generated_records(n), folder / "oracle.jsonl")
