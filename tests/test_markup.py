"""User data is never Rich markup: a name like ``[bold red]x`` shows as written, ``[/dim]`` crashes nothing.

Annotator names, dimension names, a project and a file name carrying markup go through every
table (``annotators``, ``stats``, the audit table) and every progress line (``sync --progress``,
ingest's and training's progress bars).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from rich.console import Console

from tests.clirun import clean_env, run

NAMES = ("[bold red]x", "[/dim]", "alice")


def _write_votes(path: Path, n: int = 24) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=["prompt", "response_a", "response_b", "label", "annotator", "dimension"])
        out.writeheader()
        for i in range(n):
            for j, who in enumerate(NAMES):
                out.writerow(
                    {
                        "prompt": f"question {i}",
                        "response_a": f"answer a {i}",
                        "response_b": f"answer b {i}",
                        "label": "ab"[(i + j) % 2],
                        "annotator": who,
                        "dimension": "[/dim]" if i % 3 == 0 else "",
                    }
                )


def test_markup_in_annotator_and_dimension_names_shows_as_written_in_every_table(tmp_path: Path) -> None:
    _write_votes(tmp_path / "[red]votes.csv")
    run(tmp_path, "ingest", "[red]votes.csv")
    table = run(tmp_path, "annotators")
    assert table.returncode == 0 and "unexpected" not in table.stderr, table.stderr
    for name in NAMES:
        assert name in table.stdout, f"{name!r} is shown as written"
    stats = run(tmp_path, "stats")
    assert stats.returncode == 0 and "[/dim]" in stats.stdout, stats.stdout + stats.stderr


def test_markup_in_a_project_name_shows_as_written_in_syncs_progress_lines(tmp_path: Path) -> None:
    run(tmp_path, "init")
    (tmp_path / "prefloop.toml").write_text(
        '[backend]\nname = "simulated"\nproject = "[/dim][bold red]p"\nurl = "sim"\n'
    )
    sync = run(tmp_path, "sync", "--progress", check=False, env=clean_env())
    assert sync.returncode in (0, 5), sync.stdout + sync.stderr
    assert "[/dim][bold red]p" in sync.stderr, sync.stderr


def _rendered(renderable: object) -> str:
    screen = Console(file=io.StringIO(), width=200, color_system=None)
    screen.print(renderable)
    return screen.file.getvalue()  # type: ignore[attr-defined]


def test_markup_in_names_shows_as_written_in_the_audit_table_and_progress_bars() -> None:
    from prefloop.cli.model import _audit_table
    from prefloop.data.ingest import _progress

    report = {
        "model": "[/dim]m",
        "n_pairs": 3,
        "probes": [
            {
                "name": "[bold red]probe",
                "mean_shift": 0.1,
                "ci": [0.0, 0.2],
                "shift_beyond_length": 0.05,
                "flip_rate": 0.1,
                "flip_ci": [0.0, 0.2],
            }
        ],
    }
    shown = _rendered(_audit_table(report))
    assert "[/dim]m" in shown and "[bold red]probe" in shown

    bar = _progress(True)
    bar.console.file = io.StringIO()
    bar.add_task("reading [/dim]file.jsonl", total=None)
    assert "reading [/dim]file.jsonl" in _rendered(bar.get_renderable())
