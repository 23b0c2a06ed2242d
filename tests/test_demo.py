"""`prefloop demo` as a user runs it, on the generated fallback data (no ../shared needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_offline_and_writes_the_report(tmp_path: Path) -> None:
    env = {**os.environ, "PREFLOOP_DEMO_DATA": str(tmp_path / "absent.jsonl"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "prefloop.cli", "demo", "--workdir", str(tmp_path / "demo"),
                           "--cycles", "3", "--queue", "20", "--milestone", "20"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = tmp_path / "demo" / "report" / "report.md"
    assert report.exists() and f"report at {report}" in proc.stdout
    text = report.read_text()
    assert "generated pairs" in text and "| 3 |" in text
    for png in ("learning_curve.png", "reliability.png", "reward_vs_length.png", "agreement.png"):
        assert (report.parent / png).stat().st_size > 1000
    # the generated data has a learnable signal: the loop's model must beat chance clearly
    accuracy = float(next(line for line in text.splitlines() if line.startswith("- accuracy:")).split(":")[1])
    assert accuracy > 0.75
