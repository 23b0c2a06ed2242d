"""Getting data in and out of the store: ``init``, ``ingest``, ``export``, ``stats``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prefloop.cli.app import Context, echo_json, pass_ctx
from prefloop.cli.options import format_names, known_encoding, reading, reading_options

if TYPE_CHECKING:
    from prefloop.data.ingest import IngestReport

__all__ = ["export", "ingest", "init", "stats"]


@click.command()
@pass_ctx
def init(obj: Context) -> None:
    """Create the store, or upgrade it to the newest schema (never inside a database that is not one).

    \b
    Example:
      prefloop init --db postgresql://me@db.example/prefloop
    """
    from prefloop.store.db import current_revision

    click.echo(f"database ready at schema revision {current_revision(obj.engine(create=True))}")


_INGEST_HELP = """Read pairs and labels from JSONL, JSON, CSV, Parquet or a Hugging Face dataset.

    The layout of well-known datasets and tool exports is detected from the first row
    (or named with --format); other files use prompt/response_a/response_b/label,
    chosen/rejected or prompt/responses columns, renamed with --map. Degenerate rows of
    known datasets (identical responses, empty texts) are skipped and counted; --strict
    refuses them instead. Nothing is written unless the whole source is good.

    \b
    Formats: {formats}

    \b
    Examples:
      prefloop ingest hh.jsonl.gz                       # HH chosen/rejected dialogues
      prefloop ingest pandalm-testset-v1.json           # detected: 3 votes per pair
      prefloop ingest project-12.json                   # Label Studio export (JSON, JSON_MIN, CSV) of any project
      prefloop ingest my-argilla-dataset/               # Argilla to_hub / to_disk folder
      prefloop ingest shp.jsonl --format shp            # labels = 1 means A
      prefloop ingest votes.csv --map prompt=question --map label=winner --label-map 1=a,0=b
      prefloop ingest tldr.jsonl --map prompt=info.post --map response_a=summaries.0.text \\
          --map response_b=summaries.1.text --map label=choice --label-map 0=a,1=b
      prefloop ingest scores.csv --map label=pref --label-decoder signed --dimension helpful
      prefloop ingest hf://Anthropic/hh-rlhf --hf-split test   # from the hub, with internet
      prefloop ingest big.parquet --skip-invalid --rejects bad.jsonl
    """


@click.command(help=_INGEST_HELP.format(formats=", ".join(format_names())))
@click.argument("source")
@reading_options
@click.option("--dimension", default=None, help="Dimension of labels that do not name one (default: overall).")
@click.option("--annotator", default=None, help="Annotator of labels that do not name one (default: import:FILE).")
@click.option("--strict", is_flag=True, help="Refuse degenerate rows (identical responses, empty texts).")
@click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    callback=known_encoding,
    help="Text encoding of JSONL/CSV input (a Python codec name: utf-8, utf-8-sig, latin-1, cp1252, ...).",
)
@click.option("--hub", is_flag=True, help="SOURCE is a Hugging Face Hub name (same as an hf:// prefix).")
@click.option("--skip-invalid", is_flag=True, help="Keep valid rows; write rejected ones with reasons to a file.")
@click.option("--rejects", default=None, help="Where --skip-invalid writes rejected rows (JSONL).")
@click.option(
    "--split",
    default="pool",
    type=click.Choice(["pool", "test"]),
    help="'test' pairs are held out: never sent to annotators nor trained on.",
)
@click.option("--hf-split", default=None, help="Split to read from a datasets source (default: train).")
@click.option("--max-chars", default=200_000, show_default=True, help="Longest accepted text.")
@click.option(
    "--max-pairs-per-prompt",
    type=int,
    default=None,
    help="Cap candidate pairs expanded from several responses per prompt.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def ingest(
    obj: Context,
    source: str,
    fmt: str | None,
    file_type: str | None,
    mapping: tuple[str, ...],
    label_map: str | None,
    label_decoder: str | None,
    dimension: str | None,
    annotator: str | None,
    strict: bool,
    encoding: str,
    hub: bool,
    skip_invalid: bool,
    rejects: str | None,
    split: str,
    hf_split: str | None,
    max_chars: int,
    max_pairs_per_prompt: int | None,
    as_json: bool,
) -> None:
    from prefloop.loop.ingest_store import ingest_into_store

    file_type, opts = reading(
        fmt,
        file_type,
        mapping,
        label_map,
        label_decoder,
        max_chars=max_chars,
        max_pairs_per_prompt=max_pairs_per_prompt,
        dimension=dimension,
        annotator=annotator,
        strict=strict,
    )
    report = ingest_into_store(
        obj.config().db_url(),
        lambda: obj.engine(create=True),
        source,
        file_type=file_type,
        opts=opts,
        hub=hub,
        skip_invalid=skip_invalid,
        rejects_path=rejects,
        split=split,
        hf_split=hf_split,
        encoding=encoding,
        progress=sys.stderr.isatty(),
    )
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(
        f"{source} ({report.format}): {report.rows} rows, {report.pairs_seen} pairs, "
        f"{report.labels_seen} labels by {report.annotators} annotators; "
        f"{report.pairs_added} new pairs{_not_new(report)}, {report.labels_added} new labels"
    )
    if report.unread:
        shown = ", ".join(f"{name!r} ({count})" for name, count in report.unread.items())
        click.echo(f"annotations whose verdict was not read (no label from them): {shown}; see --label-map, --map")
    if report.degenerate:
        click.echo(
            f"{report.degenerate} degenerate rows skipped (identical responses or empty texts; --strict refuses them)"
        )
    if report.nothing_new:
        click.echo("nothing new: everything in this source was already in the store")
    if report.rejected:
        click.echo(f"{report.rejected} rows rejected; reasons in {report.rejects_path}")


@click.command()
@click.argument("out")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "parquet", "hf"]),
    default=None,
    help="Output format (default: from OUT's suffix; 'hf' writes a datasets folder).",
)
@click.option(
    "--kind",
    type=click.Choice(["trl", "raw", "scores"]),
    default="trl",
    show_default=True,
    help="trl: prompt/chosen/rejected; raw: one row per label with annotator and provenance; scores: a "
    "model's stored predictions, one row per pair with p_a_<dimension> per head (and combined).",
)
@click.option("--model", default=None, metavar="VERSION", help="--kind scores: the model (default: the newest).")
@click.option("--per-annotator", is_flag=True, help="trl: one row per label instead of one per pair.")
@click.option(
    "--aggregate",
    type=click.Choice(["majority", "dawid-skene", "none"]),
    default="majority",
    show_default=True,
    help="Several labels on a pair → one row: majority vote, Dawid-Skene "
    "(weights annotators by estimated reliability; adds confidence), or none (= --per-annotator).",
)
@click.option(
    "--ties",
    type=click.Choice(["exclude", "separate"]),
    default="exclude",
    show_default=True,
    help="Ties and disagreements are never chosen/rejected; 'separate' writes them to OUT.ties.*",
)
@click.option("--margin", is_flag=True, help="Add a 'margin' column from label strength.")
@click.option(
    "--dimension", default=None, help="Dimension to export (default: overall for trl; every dimension for raw)."
)
@pass_ctx
def export(
    obj: Context,
    out: str,
    fmt: str | None,
    kind: str,
    per_annotator: bool,
    aggregate: str,
    ties: str,
    margin: bool,
    dimension: str | None,
    model: str | None,
) -> None:
    """Write labels for training: TRL chosen/rejected, or raw per-annotator rows; or a model's scores.

    \b
    Examples:
      prefloop export prefs.jsonl --margin --ties separate
      prefloop export prefs.parquet --kind raw          # annotator, tie, strength, dimension, skips
      prefloop export harmless.jsonl --dimension harmless
      prefloop export prefs_ds --format hf
      prefloop export prefs.jsonl --aggregate dawid-skene
      prefloop export scores.jsonl --kind scores      # the newest model's P(a≻b) per dimension, per pair
    """
    from prefloop.data.export_store import export_store

    report = export_store(
        obj.engine,
        out,
        fmt=fmt,
        kind=kind,
        model=model,
        aggregate="none" if per_annotator else aggregate,
        ties=ties,
        margin=margin,
        dimension=dimension,
    )
    if kind == "scores":
        click.echo(f"wrote {report.rows} rows to {report.path}")
        return
    click.echo(
        f"wrote {report.rows} rows to {report.path} "
        f"({report.ties} ties, {report.disagreements} disagreements not in it"
        + (f"; written to {report.ties_path})" if report.ties_path else ")")
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output for scripts and cron.")
@pass_ctx
def stats(obj: Context, as_json: bool) -> None:
    """Counts of pairs, labels (by choice, dimension, backend), annotators and tasks.

    \b
    Example:
      prefloop stats --json | jq .labels_by_choice
    """
    from prefloop.loop.status import store_report

    data = store_report(obj.engine())
    if as_json:
        echo_json(data)
        return
    table = Table(title="prefloop store", show_header=False)
    for key, value in data.items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)
        table.add_row(escape(key.replace("_", " ")), escape(shown))  # names in the store are user data
    Console().print(table)


def _not_new(report: IngestReport) -> str:
    """'' or ' (N already stored, M repeated in this source)': why some pairs read were not new."""
    stored = report.pairs_distinct - report.pairs_added
    repeated = report.pairs_seen - report.pairs_distinct
    parts = [f"{stored} already stored"] if stored else []
    parts += [f"{repeated} repeated in this source"] if repeated else []
    return f" ({', '.join(parts)})" if parts else ""
