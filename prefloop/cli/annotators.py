"""The people: ``annotators`` (quality report) and ``gold`` (known-answer pairs)."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Column, Table

from prefloop.cli.app import Context, echo_json, pass_ctx

__all__ = ["annotators", "gold_group"]


def _cell(value: Any, digits: int = 3) -> str:
    """A table cell: '-' for a statistic that is undefined (too few labels), numbers rounded."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object: annotators, krippendorff_alpha, fleiss_kappa.")
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False, writable=True),
    help="Folder for kappa_heatmap.png and annotators.json (created if missing; not a file).",
)
@click.option("--dimension", default="overall", show_default=True, help="Labels of this dimension only.")
@pass_ctx
def annotators(obj: Context, as_json: bool, out: str | None, dimension: str) -> None:
    """Annotator quality: agreement, Cohen's kappa, Dawid-Skene reliability, ties, skips, time,
    position bias, flags (spammer, position-biased, low agreement, failed gold).

    The gold check uses [annotators] gold_min_labels and min_gold_accuracy (--config names
    another prefloop.toml).

    \b
    Examples:
      prefloop annotators
      prefloop annotators --json --out quality/ | jq '.annotators[] | select(.flagged)'
    """
    from prefloop.loop.annotator_quality import annotators_report, gold_thresholds

    thresholds = gold_thresholds(obj.config().annotators)
    data = annotators_report(obj.engine(), out=out, dimension=dimension, thresholds=thresholds)
    if as_json:
        echo_json(data)
        return
    table = Table(
        Column("annotator", overflow="fold"),  # a name is never cut: folded on a terminal, whole in a pipe
        "labels",
        "consensus",
        "reliability",
        "ties",
        "skips",
        "s/label",
        "first shown",
        Column("flags", overflow="fold"),
        title="annotators",
    )
    for row in data["annotators"]:
        bias = row["position_bias"]
        table.add_row(
            escape(str(row["annotator"])),  # a name is user data, never markup
            str(row["labels"]),
            _cell(row["agreement_with_consensus"]),
            _cell(row["reliability"]),
            _cell(row["tie_rate"]),
            _cell(row["skip_rate"]),
            _cell(row["median_seconds"], digits=1),
            f"{_cell(bias['first_shown_share'])} (p={_cell(bias['p_value'])})" if bias else "-",
            escape(", ".join(row["reasons"])) or "-",
        )
    screen = Console()
    needed = Measurement.get(screen, screen.options.update_width(10_000), table).maximum
    if needed > screen.width and not screen.is_terminal:  # a pipe or a file: as wide as the table needs
        screen = Console(width=needed)
    screen.print(table)
    click.echo(
        f"Krippendorff's alpha {data['krippendorff_alpha']}   Fleiss' kappa {data['fleiss_kappa']}   "
        f"items {data['items']} ({data['items_with_several_labels']} with several labels)"
        + (f"   heatmap {data['heatmap']}" if data.get("heatmap") else "")
    )


@click.group(name="gold")
def gold_group() -> None:
    """Known-answer pairs for gold checks ([annotators] gold_rate mixes them into the queue).

    \b
    Example:
      prefloop gold add checks.jsonl && prefloop config show | grep gold_rate
    """


@gold_group.command(name="add")
@click.argument("source")
@pass_ctx
def gold_add(obj: Context, source: str) -> None:
    """Add pairs with known answers from a labeled file (any format `ingest` reads).

    The pairs are held apart (split 'gold'): never chosen by acquisition nor trained on.

    \b
    Example:
      prefloop gold add checks.jsonl
    """
    from prefloop.loop.gold import add_gold_file

    result = add_gold_file(obj.engine(), source)
    click.echo(
        f"{result['gold_answers']} new gold answers from {result['pairs']} pairs"
        + (f" ({result['conflicting']} with conflicting labels skipped)" if result["conflicting"] else "")
    )


@gold_group.command(name="derive")
@click.option("--min-labels", default=3, show_default=True, help="Labels a pair needs, all the same.")
@click.option(
    "--min-reliability",
    default=0.8,
    show_default=True,
    help="Dawid-Skene reliability each of its annotators needs (and no flag).",
)
@pass_ctx
def gold_derive(obj: Context, min_labels: int, min_reliability: float) -> None:
    """Make known answers of pairs labeled unanimously by reliable annotators (for other projects:
    a pair is shown once per project).

    \b
    Example:
      prefloop gold derive --min-labels 3 --min-reliability 0.85
    """
    from prefloop.loop.gold import derive_gold

    result = derive_gold(obj.engine(), min_labels=min_labels, min_reliability=min_reliability)
    click.echo(
        f"{result['gold_answers']} new gold answers ({result['candidates']} unanimous pairs by "
        f"{', '.join(result['trusted_annotators']) or 'nobody trusted'})"
    )
