"""A thin click skin over prefloop's library calls. Each command's help carries an example."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from prefloop.errors import PrefloopError

__all__ = ["main"]

console = Console(stderr=True)


class Context:
    def __init__(self, db: str | None) -> None:
        from prefloop.store.db import resolve_db_url

        self.db_url = resolve_db_url(db)

    def engine(self, migrate: bool = True) -> Any:
        from prefloop.store.db import init_db, make_engine

        if migrate:
            init_db(self.db_url)
        return make_engine(self.db_url)


pass_ctx = click.make_pass_decorator(Context)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, default=str, sort_keys=True))


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="PREFLOOP_DB_URL", default=None,
              help="Database URL or SQLite file (default: prefloop.db here; env PREFLOOP_DB_URL).")
@click.version_option(package_name="prefloop")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """prefloop: active learning between human preference annotators and a reward model.

    \b
    Example:
      prefloop ingest pairs.jsonl && prefloop stats
    """
    ctx.obj = Context(db)


@cli.command()
@pass_ctx
def init(obj: Context) -> None:
    """Create the database, or upgrade it to the newest schema.

    \b
    Example:
      prefloop --db postgresql://me@db.example/prefloop init
    """
    from prefloop.store.db import init_db

    revision = init_db(obj.db_url)
    click.echo(f"database ready at schema revision {revision}")


def _parse_mapping(values: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: use CANONICAL=COLUMN, e.g. prompt=question", param_hint="--map")
        canonical, column = item.split("=", 1)
        mapping[canonical.strip()] = column.strip()
    return mapping


@cli.command()
@click.argument("source")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet", "hf"]), default=None,
              help="Input format (default: from the file name; a folder or hub name is a datasets source).")
@click.option("--map", "mapping", multiple=True, metavar="CANONICAL=COLUMN",
              help="Rename a column: prompt, response_a, response_b, label, chosen, rejected, responses, ...")
@click.option("--skip-invalid", is_flag=True, help="Keep valid rows; write rejected ones with reasons to a file.")
@click.option("--rejects", default=None, help="Where --skip-invalid writes rejected rows (JSONL).")
@click.option("--split", default="pool", type=click.Choice(["pool", "test"]),
              help="'test' pairs are held out: never sent to annotators nor trained on.")
@click.option("--hf-split", default=None, help="Split to read from a datasets source (default: train).")
@click.option("--max-chars", default=200_000, show_default=True, help="Longest accepted text.")
@click.option("--max-pairs-per-prompt", type=int, default=None,
              help="Cap candidate pairs expanded from several responses per prompt.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def ingest(obj: Context, source: str, fmt: str | None, mapping: tuple[str, ...], skip_invalid: bool,
           rejects: str | None, split: str, hf_split: str | None, max_chars: int,
           max_pairs_per_prompt: int | None, as_json: bool) -> None:
    """Read pairs and labels from JSONL, CSV, Parquet or a Hugging Face dataset.

    \b
    Examples:
      prefloop ingest hh.jsonl.gz                       # HH chosen/rejected dialogues
      prefloop ingest votes.csv --map prompt=question --map label=winner
      prefloop ingest Anthropic/hh-rlhf --hf-split test # from the hub, with internet
      prefloop ingest big.parquet --skip-invalid --rejects bad.jsonl
    """
    from prefloop.data.ingest import ingest as run_ingest
    from prefloop.data.shapes import ShapeOptions

    opts = ShapeOptions(mapping=_parse_mapping(mapping) or None, max_chars=max_chars,
                        max_pairs_per_prompt=max_pairs_per_prompt)
    try:
        report = run_ingest(obj.engine(), source, fmt=fmt, opts=opts, skip_invalid=skip_invalid,
                            rejects_path=rejects, split=split, hf_split=hf_split,
                            progress=sys.stderr.isatty())
    except PrefloopError as exc:
        raise _fail(exc) from None
    if as_json:
        _echo_json(report.to_dict())
        return
    click.echo(f"{source}: {report.rows} rows, {report.pairs_added} new pairs "
               f"({report.pairs_seen - report.pairs_added} already stored), {report.labels_added} new labels")
    if report.nothing_new:
        click.echo("nothing new: everything in this source was already in the store")
    if report.rejected:
        click.echo(f"{report.rejected} rows rejected; reasons in {report.rejects_path}")


@cli.command()
@click.argument("out")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet", "hf"]), default=None,
              help="Output format (default: from OUT's suffix; 'hf' writes a datasets folder).")
@click.option("--kind", type=click.Choice(["trl", "raw"]), default="trl", show_default=True,
              help="trl: prompt/chosen/rejected; raw: one row per label with annotator and provenance.")
@click.option("--per-annotator", is_flag=True, help="trl: one row per label instead of one per pair.")
@click.option("--ties", type=click.Choice(["exclude", "separate"]), default="exclude", show_default=True,
              help="Ties and disagreements are never chosen/rejected; 'separate' writes them to OUT.ties.*")
@click.option("--margin", is_flag=True, help="Add a 'margin' column from label strength.")
@click.option("--dimension", default="overall", show_default=True)
@pass_ctx
def export(obj: Context, out: str, fmt: str | None, kind: str, per_annotator: bool, ties: str, margin: bool,
           dimension: str) -> None:
    """Write labels for training: TRL chosen/rejected, or raw per-annotator rows.

    \b
    Examples:
      prefloop export prefs.jsonl --margin --ties separate
      prefloop export prefs.parquet --kind raw
      prefloop export prefs_ds --format hf
    """
    from prefloop.data.export import export_labels

    if fmt is None:
        fmt = "parquet" if out.endswith(".parquet") else "jsonl" if out.endswith(".jsonl") else "hf"
    try:
        report = export_labels(obj.engine(), out, fmt=fmt, kind=kind, aggregate=not per_annotator,
                               ties=ties, margin=margin, dimension=dimension)
    except PrefloopError as exc:
        raise _fail(exc) from None
    click.echo(f"wrote {report.rows} rows to {report.path} "
               f"({report.ties} ties, {report.disagreements} disagreements not in it"
               + (f"; written to {report.ties_path})" if report.ties_path else ")"))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output for scripts and cron.")
@pass_ctx
def stats(obj: Context, as_json: bool) -> None:
    """Counts of pairs, labels (by choice, dimension, backend), annotators and tasks.

    \b
    Example:
      prefloop stats --json | jq .labels_by_choice
    """
    from prefloop.store.db import session_scope
    from prefloop.store.queries import store_stats

    with session_scope(obj.engine()) as session:
        data = store_stats(session)
    if as_json:
        _echo_json(data)
        return
    table = Table(title="prefloop store", show_header=False)
    for key, value in data.items():
        table.add_row(key.replace("_", " "), json.dumps(value) if isinstance(value, dict) else str(value))
    Console().print(table)


def main() -> None:
    cli(prog_name="prefloop")


if __name__ == "__main__":
    main()
