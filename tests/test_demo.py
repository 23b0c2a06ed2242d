"""`prefloop demo` as a user runs it: both arms, the Markdown and HTML report, and on the packaged
real pairs (no ../shared needed) a held-out log-loss that falls as labels arrive."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from prefloop.loop.demo import DemoSize, run_demo

pytestmark = pytest.mark.slow


def test_synthetic_demo_from_the_cli_writes_both_reports(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefloop.cli",
            "demo",
            "--synthetic",
            "--quick",
            "--workdir",
            str(tmp_path / "demo"),
            "--cycles",
            "3",
            "--test-size",
            "100",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = tmp_path / "demo" / "report" / "report.md"
    assert f"report at {report}" in proc.stdout
    text = report.read_text()
    assert "generated pairs" in text and "| noise_aware | 3 |" in text and "| random | 3 |" in text
    pngs = ("learning_curves.png", "reliability.png", "reward_vs_length.png", "length_groups.png", "agreement.png")
    for png in pngs:
        assert (report.parent / png).stat().st_size > 1000
    page = report.with_suffix(".html").read_text()
    assert page.count('src="data:image/png;base64,') == len(pngs) and "<table>" in page  # self-contained
    # the final model's accuracy by length group, and a worst-group column in the curve table
    assert "## Accuracy by length group" in text and "| chosen_longer |" in text and "worst group" in text
    # generated pairs carry a learnable signal: the final model is far from chance
    final = re.search(r"\| accuracy \| ([0-9.]+) \|", text)
    assert final is not None and float(final.group(1)) > 0.75


def test_quick_demo_on_the_packaged_real_pairs_learns(tmp_path: Path) -> None:
    lines: list[str] = []
    path = run_demo(str(tmp_path / "demo"), quick=True, say=lines.append)
    text = path.read_text()
    assert "packaged sample of real HH-RLHF" in lines[0] and "packaged sample of real HH-RLHF" in text
    rows = re.findall(r"\| noise_aware \| (\d+) \| (\d+) \| (\d+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \|", text)
    assert len(rows) == DemoSize.quick().cycles - 1  # a model at every cycle after the cold start
    labels = [int(r[1]) for r in rows]
    log_loss = [float(r[4]) for r in rows]
    assert labels == sorted(labels) and labels[-1] > labels[0]
    # the held-out log-loss falls as labels arrive (the last two models against the first, so one
    # noisy cycle does not decide it), and ends better than a coin
    assert sum(log_loss[-2:]) / 2 < log_loss[0], rows
    assert log_loss[-1] < 0.693
    assert "95 % paired-bootstrap interval" in text
