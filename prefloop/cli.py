"""A thin click skin over prefloop's library calls. Each command's help carries an example."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from typing import Any, Literal

import click
from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table

from prefloop.errors import PrefloopError

__all__ = ["main"]

console = Console(stderr=True)


class Context:
    """What every command shares: the global options and the one effective configuration."""

    def __init__(self, db: str | None, config_path: str | None, debug: bool = False) -> None:
        self.db_flag = db
        self.config_path = config_path
        self.debug = debug
        self._config: Any = None
        self._engines: list[Any] = []

    def config(self, path: str | None = None, **overrides: Any) -> Any:
        """The effective configuration (flags > environment > prefloop.toml > defaults), loaded once."""
        from prefloop.config import load_config

        flags = {k: v for k, v in overrides.items() if v is not None}
        if self._config is None or path or flags:
            self._config = load_config(path or self.config_path, db=self.db_flag, overrides=flags)
        return self._config

    @property
    def db_url(self) -> str:
        return str(self.config().db_url())

    def engine(self, create: bool = False, migrate: bool = True) -> Any:
        """The store of the effective configuration; only ``create`` makes a new one. Named on stderr."""
        from prefloop.store.db import describe_url, open_store

        engine = open_store(self.db_url, create=create, migrate=migrate)
        click.echo(f"store: {describe_url(self.db_url)}", err=True)
        self._engines.append(engine)
        return engine

    def close(self) -> None:
        """Close every store connection this command opened (run when the command ends)."""
        while self._engines:
            self._engines.pop().dispose()


pass_ctx = click.make_pass_decorator(Context)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, default=str, sort_keys=True))


def _fail(exc: Exception) -> click.ClickException:
    """A library error as click's, with the error's own exit code (1 for one that has none)."""
    failure = click.ClickException(str(exc))
    failure.exit_code = int(getattr(exc, "exit_code", 1))  # type: ignore[misc]  # click reads it per instance
    return failure


# global options: accepted before or after the subcommand (``prefloop stats --db x.db``)
_GLOBAL_WITH_VALUE = ("--db", "--config")
_GLOBAL_FLAGS = ("--debug",)


def _hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found after the subcommand to the front, where click reads them."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in _GLOBAL_WITH_VALUE and i + 1 < len(args):
            front.extend(args[i : i + 2])
            i += 2
            continue
        if arg in _GLOBAL_FLAGS or arg.startswith(tuple(f"{name}=" for name in _GLOBAL_WITH_VALUE)):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _say_error(exc: BaseException, debug: bool) -> int:
    """The one place a command's failure becomes a message and an exit code."""
    from prefloop.errors import exit_code_for, underlying_error

    exc = underlying_error(exc)
    if isinstance(exc, PrefloopError):
        click.echo(f"Error: {exc}", err=True)
    elif isinstance(exc, KeyboardInterrupt):
        click.echo("Error: interrupted (SIGINT); committed work is kept, rerun to continue", err=True)
    else:
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc}\n(rerun with --debug for the traceback)", err=True)
    return exit_code_for(exc)


class PrefloopGroup(click.Group):
    """Hoists global options and maps every error to its message and exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            args = _hoist_global_options(list(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            debug = isinstance(ctx.obj, Context) and ctx.obj.debug
            if debug and not isinstance(exc, PrefloopError | KeyboardInterrupt):
                raise
            ctx.exit(_say_error(exc, debug))


def _raise_on_signal(signum: int, _frame: Any) -> None:
    from prefloop.errors import Interrupted

    raise Interrupted(signal.Signals(signum).name)


@click.group(cls=PrefloopGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    default=None,
    help="Database URL or SQLite file (default: env PREFLOOP_DB_URL, else db in prefloop.toml, "
    "else prefloop.db here). Before or after the subcommand.",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    help="prefloop.toml to read (default: env PREFLOOP_CONFIG, else ./prefloop.toml if present).",
)
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.version_option(package_name="prefloop")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config_path: str | None, debug: bool) -> None:
    """prefloop: active learning between human preference annotators and a reward model.

    Settings come from flags, then the environment, then prefloop.toml, then defaults
    (`prefloop config show` prints them with their sources). Only `init` and `ingest`
    create a store.

    \b
    Example:
      prefloop init && prefloop ingest pairs.jsonl && prefloop stats
    """
    ctx.obj = Context(db, config_path, debug)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@pass_ctx
def init(obj: Context) -> None:
    """Create the store, or upgrade it to the newest schema (never inside a database that is not one).

    \b
    Example:
      prefloop init --db postgresql://me@db.example/prefloop
    """
    from prefloop.store.db import current_revision

    engine = obj.engine(create=True)
    try:
        click.echo(f"database ready at schema revision {current_revision(engine)}")
    finally:
        engine.dispose()


def _parse_mapping(values: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: use CANONICAL=COLUMN, e.g. prompt=question", param_hint="--map")
        canonical, column = item.split("=", 1)
        mapping[canonical.strip()] = column.strip()
    return mapping


def _parse_label_map(value: str | None) -> dict[str, Any] | None:
    from prefloop.types import Choice

    if not value:
        return None
    out: dict[str, Any] = {}
    for item in value.split(","):
        raw, _, meaning = item.partition("=")
        try:
            out[raw.strip()] = Choice(meaning.strip().lower())
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: use VALUE=a|b|tie|skip, e.g. 1=a,0=b", param_hint="--label-map"
            ) from None
    return out


_FILE_TYPES = ["jsonl", "json", "csv", "parquet", "hf"]


def _format_names() -> list[str]:
    from prefloop.data.formats import adapter_names

    return adapter_names()


_READING_OPTIONS = [
    click.option(
        "--format",
        "fmt",
        type=click.Choice([*_FILE_TYPES, *_format_names()]),
        default=None,
        help="Dataset format (default: detected; `prefloop ingest --help` lists them), or a file type.",
    ),
    click.option(
        "--file-type",
        type=click.Choice(_FILE_TYPES),
        default=None,
        help="File type (default: from the name; a folder is a saved dataset or an Argilla to_disk export).",
    ),
    click.option(
        "--map",
        "mapping",
        multiple=True,
        metavar="CANONICAL=COLUMN",
        help="Rename a column: prompt, response_a, response_b, label, chosen, rejected, responses, ...; "
        "COLUMN may be a nested path (info.post, summaries.0.text) or json:COLUMN.",
    ),
    click.option(
        "--label-map",
        default=None,
        metavar="VALUE=a|b|tie,...",
        help="What each label value means, e.g. 1=a,0=b (needed for numeric labels).",
    ),
    click.option(
        "--label-decoder",
        type=click.Choice(["signed", "signed-b", "onehot", "rank"]),
        default=None,
        help="signed: label>0 means A better (|label| = strength); signed-b: >0 means B; "
        "onehot: label_a/label_b/label_tie columns; rank: rank_a/rank_b, 1 = best.",
    ),
]


def reading_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """How to read a file of pairs (ingest, eval --data, audit --data): its type, layout and label meaning."""
    for option in reversed(_READING_OPTIONS):
        command = option(command)
    return command


def _reading(
    fmt: str | None,
    file_type: str | None,
    mapping: tuple[str, ...],
    label_map: str | None,
    label_decoder: str | None,
    **more: Any,
) -> tuple[str | None, Any]:
    """(file type, ``ShapeOptions``) from the reading options; ``more`` sets other ``ShapeOptions`` fields."""
    from prefloop.data.fields import ShapeOptions

    if fmt in _FILE_TYPES:  # the older meaning of --format
        file_type, fmt = file_type or fmt, None
    opts = ShapeOptions(
        mapping=_parse_mapping(mapping) or None,
        label_map=_parse_label_map(label_map),
        label_decoder=label_decoder,
        fmt=fmt,
        **more,
    )
    return file_type, opts


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
      prefloop ingest shp.jsonl --format shp            # labels = 1 means A
      prefloop ingest votes.csv --map prompt=question --map label=winner --label-map 1=a,0=b
      prefloop ingest tldr.jsonl --map prompt=info.post --map response_a=summaries.0.text \\
          --map response_b=summaries.1.text --map label=choice --label-map 0=a,1=b
      prefloop ingest scores.csv --map label=pref --label-decoder signed --dimension helpful
      prefloop ingest hf://Anthropic/hh-rlhf --hf-split test   # from the hub, with internet
      prefloop ingest big.parquet --skip-invalid --rejects bad.jsonl
    """


@cli.command(help=_INGEST_HELP.format(formats=", ".join(_format_names())))
@click.argument("source")
@reading_options
@click.option("--dimension", default=None, help="Dimension of labels that do not name one (default: overall).")
@click.option("--annotator", default=None, help="Annotator of labels that do not name one (default: import:FILE).")
@click.option("--strict", is_flag=True, help="Refuse degenerate rows (identical responses, empty texts).")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of JSONL/CSV input.")
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
    from prefloop.data.ingest import ingest as run_ingest
    from prefloop.data.readers import require_source

    file_type, opts = _reading(
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
    try:
        require_source(source, file_type, hub)  # a mistyped path creates no store
        report = run_ingest(
            obj.engine(create=True),
            source,
            fmt=file_type,
            opts=opts,
            skip_invalid=skip_invalid,
            rejects_path=rejects,
            split=split,
            hf_split=hf_split,
            encoding=encoding,
            hub=hub,
            progress=sys.stderr.isatty(),
        )
    except PrefloopError as exc:
        raise _fail(exc) from None
    if as_json:
        _echo_json(report.to_dict())
        return
    click.echo(
        f"{source} ({report.format}): {report.rows} rows, {report.pairs_seen} pairs, "
        f"{report.labels_seen} labels by {report.annotators} annotators; "
        f"{report.pairs_added} new pairs ({report.pairs_seen - report.pairs_added} already stored or "
        f"repeated), {report.labels_added} new labels"
    )
    if report.degenerate:
        click.echo(
            f"{report.degenerate} degenerate rows skipped (identical responses or empty texts; --strict refuses them)"
        )
    if report.nothing_new:
        click.echo("nothing new: everything in this source was already in the store")
    if report.rejected:
        click.echo(f"{report.rejected} rows rejected; reasons in {report.rejects_path}")


@cli.command()
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
    dimension: str,
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
    from pathlib import Path

    from prefloop.data.export import export_labels
    from prefloop.errors import InvalidRequest
    from prefloop.store.db import session_scope
    from prefloop.store.queries import label_dimensions

    if fmt is None:  # from the suffix: .json and .jsonl are JSON lines, .parquet Parquet, anything else a folder
        suffix = Path(out).suffix.lower()
        fmt = "parquet" if suffix == ".parquet" else "jsonl" if suffix in (".json", ".jsonl") else "hf"
    if Path(out).is_dir():
        raise InvalidRequest(
            f"{out} is an existing folder; export writes a new file or folder: remove it or choose another name"
        )
    engine = obj.engine()
    if kind == "scores":
        from prefloop.data.export_scores import export_scores

        try:
            report = export_scores(engine, out, model=model, fmt=fmt, dimension=dimension)
        except PrefloopError as exc:
            raise _fail(exc) from None
        click.echo(f"wrote {report.rows} rows to {report.path}")
        return
    if dimension is not None:
        with session_scope(engine) as session:
            known = label_dimensions(session)
        if dimension not in known:
            raise InvalidRequest(
                f"no labels of dimension {dimension!r} in the store; its dimensions: "
                f"{', '.join(known) or 'none (no labels yet)'}"
            )
    try:
        report = export_labels(
            engine,
            out,
            fmt=fmt,
            kind=kind,
            aggregate="none" if per_annotator else aggregate,
            ties=ties,
            margin=margin,
            dimension=dimension,
        )
    except PrefloopError as exc:
        raise _fail(exc) from None
    click.echo(
        f"wrote {report.rows} rows to {report.path} "
        f"({report.ties} ties, {report.disagreements} disagreements not in it"
        + (f"; written to {report.ties_path})" if report.ties_path else ")")
    )


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


def _model_config(base: dict[str, Any], **overrides: Any) -> Any:
    from prefloop.model import ModelConfig

    data = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    return ModelConfig.from_dict(data)


@cli.command()
@click.option(
    "--mode",
    type=click.Choice(["heads", "finetune", "adapted"]),
    default=None,
    help="heads: frozen backbone + K heads (cheap); finetune: train the backbone (k>1 trains K LoRA "
    "members: K times one model's time); adapted: fine-tune one backbone, then K heads on its features.",
)
@click.option(
    "--from",
    "parent",
    default=None,
    metavar="VERSION",
    help="Warm-start from this model version: new labels plus a replay sample of old ones.",
)
@click.option("--backbone", default=None, help="HF model id or local folder (default: offline MiniLM).")
@click.option("-k", "--members", "k", type=int, default=None, help="Ensemble size (default 5).")
@click.option("--epochs", type=int, default=None)
@click.option("--max-length", type=int, default=None)
@click.option("--seed", type=int, default=None)
@click.option("--config", "config_path", default=None, help="prefloop.toml to read [model] settings from.")
@click.option(
    "--aggregate",
    type=click.Choice(["none", "majority", "dawid-skene"]),
    default=None,
    help="Several labels on a pair: none = each label counts (soft target by counts), majority = "
    "the majority choice, dawid-skene = the Dawid-Skene posterior as a soft target "
    "(default: [model] aggregate, else none).",
)
@click.option(
    "--dimension",
    "dimensions",
    multiple=True,
    metavar="NAME",
    help="Train on this dimension's labels; repeat for ONE model with a head per dimension (shared backbone; "
    "--mode heads or adapted). Default: [objectives] dimensions, else overall.",
)
@click.option(
    "--debias",
    type=click.Choice(["none", "length"]),
    default=None,
    help="length: keep response length out of the reward (default: [model] debias, else none).",
)
@click.option(
    "--debias-method",
    type=click.Choice(["odin", "conditioned", "balanced"]),
    default=None,
    help="How, with --debias length: odin (a separate length head; heads and adapted modes), conditioned "
    "(a length term in the likelihood, dropped when scoring), balanced (labels reweighted) "
    "(default: [model] debias_method, else odin).",
)
@pass_ctx
def train(
    obj: Context,
    mode: str | None,
    parent: str | None,
    backbone: str | None,
    k: int | None,
    epochs: int | None,
    max_length: int | None,
    seed: int | None,
    config_path: str | None,
    aggregate: str | None,
    dimensions: tuple[str, ...],
    debias: str | None,
    debias_method: str | None,
) -> None:
    """Train a reward-model ensemble on the store's labels; prints the new version.

    \b
    Examples:
      prefloop train                              # adapted: fine-tune MiniLM once, K=5 heads on it
      prefloop train --mode heads                 # frozen MiniLM + K=5 heads: seconds, lower accuracy
      prefloop train --mode finetune -k 1 --epochs 2
      prefloop train --from rm-1a2b3c4d           # incremental: new labels + replay
      prefloop train --aggregate dawid-skene      # soft targets weighted by annotator reliability
      prefloop train --mode heads --dimension helpful --dimension harmless   # one model, two heads
      prefloop train --debias length              # the reward does not just reward (or punish) length
    """
    from prefloop.config import model_config
    from prefloop.loop.objectives import train_objectives

    try:
        loop = obj.config(config_path)
        base = model_config(loop).to_dict()
        config = _model_config(
            base,
            mode=mode,
            backbone=backbone,
            k=k,
            epochs=epochs,
            max_length=max_length,
            seed=seed,
            debias=debias,
            debias_method=debias_method,
        )
        result = train_objectives(
            obj.engine(),
            config,
            loop.artifacts_dir,
            list(dimensions) or loop.objectives.dimensions,
            parent=parent,
            progress=sys.stderr.isatty(),
            aggregate=aggregate or loop.model.get("aggregate", "none"),
            annotators=loop.annotators,
        )
    except PrefloopError as exc:
        raise _fail(exc) from None
    console.print(
        f"trained on {result.n_new} labels"
        + (f" (+ replay from {result.n_replay_pool} older, parent {result.parent})" if result.parent else "")
    )
    click.echo(result.name)


@cli.command()
@click.option("--model", default=None, metavar="VERSION", help="Model version (default: the newest).")
@click.option("--all", "all_pairs", is_flag=True, help="Score every pair, not only unlabeled pool pairs.")
@pass_ctx
def score(obj: Context, model: str | None, all_pairs: bool) -> None:
    """Store the model's predictions (P(a≻b) per member, P(tie), spread) for the pool.

    A model with a head per dimension stores one prediction per dimension, plus the combined
    reward ("combined") when [objectives] sets weights or maximize + constraints.

    \b
    Example:
      prefloop score --model rm-1a2b3c4d
    """
    from prefloop.loop.reward import score_pool

    try:
        spec = obj.config().objectives.combined()
        name, n = score_pool(obj.engine(), model, all_pairs=all_pairs, progress=sys.stderr.isatty(), objectives=spec)
    except PrefloopError as exc:
        raise _fail(exc) from None
    click.echo(f"{name}: {n} pairs scored")


@cli.command(name="eval")
@click.option("--model", default=None, metavar="VERSION", help="Model version (default: the newest).")
@click.option("--data", default=None, help="Labeled file in any format `ingest` reads (NOT ingested).")
@reading_options
@click.option("--split", default="test", show_default=True, help="Store split to evaluate on without --data.")
@click.option("--out", default=None, help="Folder for reliability.png and reward_vs_length.png.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with accuracy, log_loss, ece, n, ...")
@click.option(
    "--dimension",
    default=None,
    metavar="NAME",
    help="The head (of a model with several) and the labels to evaluate (default: the model's first dimension).",
)
@pass_ctx
def evaluate(
    obj: Context,
    model: str | None,
    data: str | None,
    fmt: str | None,
    file_type: str | None,
    mapping: tuple[str, ...],
    label_map: str | None,
    label_decoder: str | None,
    split: str,
    out: str | None,
    as_json: bool,
    dimension: str | None,
) -> None:
    """Accuracy, log-loss, calibration (ECE) and length bias on held-out labels.

    \b
    Examples:
      prefloop eval --data heldout.jsonl --out eval/ --json
      prefloop eval --data votes.csv --map label=winner --label-map 1=a,0=b
      prefloop eval --model rm-1a2b3c4d            # on the store's test split
      prefloop eval --dimension harmless           # the harmless head on the harmless test labels
    """
    from prefloop.loop.reward import evaluate_model

    if data is None and (fmt or file_type or mapping or label_map or label_decoder):
        raise click.UsageError("--format, --file-type, --map, --label-map and --label-decoder say how to read --data")
    data_format, data_options = _reading(fmt, file_type, mapping, label_map, label_decoder)
    try:
        metrics = evaluate_model(
            obj.engine(),
            model,
            data=data,
            out=out,
            split=split,
            progress=sys.stderr.isatty(),
            dimension=dimension,
            data_format=data_format,
            data_options=data_options,
        )
    except PrefloopError as exc:
        raise _fail(exc) from None
    if as_json:
        _echo_json(metrics)
        return
    table = Table(title=f"evaluation of {metrics['model']}", show_header=False)
    for key, value in metrics.items():
        if not isinstance(value, dict | list):
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)


@cli.command()
@click.option("--backend", default=None, help="Override [backend] name: simulated | label_studio | argilla.")
@click.option("--dry-run", is_flag=True, help="Report what a real cycle would do; write nothing anywhere.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress of each long step on stderr (default: when stderr is a terminal).",
)
@pass_ctx
def sync(obj: Context, backend: str | None, dry_run: bool, progress: bool | None) -> None:
    """One cycle: pull labels, retrain at a milestone, rescore, top up the annotation queue.

    Safe to kill and to re-run at any time; prints one JSON line per step, and every
    failure ends with {"step": "error", "type": ..., "message": ...}.

    \b
    Exit codes: 0 ok, 1 unexpected error, 2 config or store error, 3 backend or database
                unreachable, 4 lock held (another sync runs), 5 nothing to do,
                130 SIGINT, 143 SIGTERM.
    \b
    Example (crontab, every 5 minutes):
      */5 * * * * cd /srv/prefs && prefloop sync >> sync.log 2>&1
    """
    from prefloop.config import check_secrets
    from prefloop.errors import ExitCode
    from prefloop.loop.sync import error_entry, json_logger, run_sync, save_traceback

    log = json_logger()
    config = None
    try:
        config = obj.config(None, **{"backend.name": backend})
        check_secrets(config)
        engine = obj.engine(migrate=not dry_run)
        report = run_sync(
            engine, config, dry_run=dry_run, log=log, progress=sys.stderr.isatty() if progress is None else progress
        )
    except (Exception, KeyboardInterrupt) as exc:
        entry = error_entry(exc)
        if obj.debug:
            import traceback

            traceback.print_exc()
        elif not isinstance(exc, PrefloopError | KeyboardInterrupt) and config is not None and not dry_run:
            entry["traceback"] = save_traceback(config.artifacts_dir, exc)
        log(entry)
        sys.exit(entry["exit_code"])
    sys.exit(ExitCode.OK if report.changed or dry_run else ExitCode.NOTHING_TO_DO)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts.")
@pass_ctx
def status(obj: Context, as_json: bool) -> None:
    """Labels by backend and annotator, pending tasks, milestone progress, models, agreement.

    \b
    Examples:
      prefloop status
      prefloop status --json | jq .milestone
    """
    from prefloop.loop.status import loop_status, status_lines
    from prefloop.store.db import session_scope

    config = obj.config()
    with session_scope(obj.engine()) as session:
        data = loop_status(session, config)
    if as_json:
        _echo_json(data)
        return
    for line in status_lines(data):
        click.echo(line)


def _cell(value: Any, digits: int = 3) -> str:
    """A table cell: '-' for a statistic that is undefined (too few labels), numbers rounded."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object: annotators, krippendorff_alpha, fleiss_kappa.")
@click.option("--out", default=None, help="Folder for kappa_heatmap.png and annotators.json.")
@click.option("--dimension", default="overall", show_default=True)
@click.option("--config", "config_path", default=None, help="prefloop.toml to read [annotators] gold settings from.")
@pass_ctx
def annotators(obj: Context, as_json: bool, out: str | None, dimension: str, config_path: str | None) -> None:
    """Annotator quality: agreement, Cohen's kappa, Dawid-Skene reliability, ties, skips, time,
    position bias, flags (spammer, position-biased, low agreement, failed gold).

    \b
    Examples:
      prefloop annotators
      prefloop annotators --json --out quality/ | jq '.annotators[] | select(.flagged)'
    """
    from prefloop.annotators import QualityThresholds
    from prefloop.loop.annotator_quality import annotators_report

    try:
        gold = obj.config(config_path).annotators
        thresholds = QualityThresholds(min_gold_accuracy=gold.min_gold_accuracy, gold_min_labels=gold.gold_min_labels)
        data = annotators_report(obj.engine(), out=out, dimension=dimension, thresholds=thresholds)
    except PrefloopError as exc:
        raise _fail(exc) from None
    if as_json:
        _echo_json(data)
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
            row["annotator"],
            str(row["labels"]),
            _cell(row["agreement_with_consensus"]),
            _cell(row["reliability"]),
            _cell(row["tie_rate"]),
            _cell(row["skip_rate"]),
            _cell(row["median_seconds"], digits=1),
            f"{_cell(bias['first_shown_share'])} (p={_cell(bias['p_value'])})" if bias else "-",
            ", ".join(row["reasons"]) or "-",
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


@cli.group(name="gold")
def gold_group() -> None:
    """Known-answer pairs for gold checks ([annotators] gold_rate mixes them into the queue)."""


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

    try:
        result = add_gold_file(obj.engine(), source)
    except PrefloopError as exc:
        raise _fail(exc) from None
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

    try:
        result = derive_gold(obj.engine(), min_labels=min_labels, min_reliability=min_reliability)
    except PrefloopError as exc:
        raise _fail(exc) from None
    click.echo(
        f"{result['gold_answers']} new gold answers ({result['candidates']} unanimous pairs by "
        f"{', '.join(result['trusted_annotators']) or 'nobody trusted'})"
    )


@cli.group(name="config")
def config_group() -> None:
    """The one effective configuration: flags > environment > prefloop.toml > defaults."""


@config_group.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="The settings as one JSON object (no sources).")
@pass_ctx
def config_show(obj: Context, as_json: bool) -> None:
    """Print the effective configuration as TOML, each value with its source, secrets masked.

    \b
    Examples:
      LABEL_STUDIO_API_KEY=... prefloop config show
      prefloop config show --config /srv/prefloop/prefloop.toml --json
    """
    from prefloop.config import masked
    from prefloop.config_render import render_config

    config = obj.config()
    if as_json:
        _echo_json(masked(config))
        return
    click.echo(render_config(config), nl=False)


@config_group.command(name="init")
@click.argument("path", default="prefloop.toml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def config_init(path: str, force: bool) -> None:
    """Write a commented starter prefloop.toml (every setting at its default, with its help).

    \b
    Example:
      prefloop config init && $EDITOR prefloop.toml && prefloop config show
    """
    from pathlib import Path

    from prefloop.config_render import starter_config
    from prefloop.errors import InvalidRequest

    target = Path(path)
    if target.exists() and not force:
        raise InvalidRequest(f"{target} exists; pass --force to overwrite it")
    target.write_text(starter_config(), encoding="utf-8")
    click.echo(f"wrote {target}; edit it, then check it with `prefloop config show`")


@cli.command()
@click.option("--workdir", default="prefloop-demo", show_default=True, help="Folder for the stores and report.")
@click.option(
    "--data",
    default=None,
    metavar="FILE",
    help="Labelled pairs in any format `ingest` reads (default: the packaged real HH-RLHF sample).",
)
@click.option("--synthetic", is_flag=True, help="Generated pairs instead of real ones (fast; not real preferences).")
@click.option("--quick", is_flag=True, help="A smaller run: 1,000 pairs, 500 held out, 6 cycles.")
@click.option("--strategy", default=None, help="Strategy compared with random (default: [acquisition] strategy).")
@click.option("--cycles", type=click.IntRange(2), default=None, help="Sync cycles per arm (default 10; quick 6).")
@click.option("--queue", type=click.IntRange(1), default=None, help="Tasks kept in front of the annotators.")
@click.option("--milestone", type=click.IntRange(1), default=None, help="Retrain after this many new labels.")
@click.option("--test-size", type=click.IntRange(20), default=None, help="Held-out pairs (default 600; 500 quick).")
def demo(
    workdir: str,
    data: str | None,
    synthetic: bool,
    quick: bool,
    strategy: str | None,
    cycles: int | None,
    queue: int | None,
    milestone: int | None,
    test_size: int | None,
) -> None:
    """Does the loop learn, and does choosing pairs beat random? Offline, on real human labels.

    Splits the 2,000 real HH-RLHF helpful preference pairs packaged with prefloop into a
    pool and 600 held-out pairs, then runs the loop twice side by side — pairs chosen by the
    acquisition strategy vs at random, same annotators and seed — with simulated annotators
    answering from the human labels, the heads model retrained at each milestone. Writes
    report.md and a self-contained report.html with both learning curves. About 5 minutes on
    a 2-core CPU the first time (embeddings are cached: a rerun takes under a minute).

    \b
    Examples:
      prefloop demo
      prefloop demo --quick --strategy bald
      prefloop demo --data my_pairs.jsonl --test-size 300
    """
    import dataclasses

    from prefloop.loop.demo import DemoSize, run_demo

    size = DemoSize.quick() if quick else DemoSize.full()
    overrides = {"cycles": cycles, "queue": queue, "milestone": milestone, "test_size": test_size}
    size = dataclasses.replace(size, **{k: v for k, v in overrides.items() if v is not None})
    try:
        path = run_demo(workdir, data=data, synthetic=synthetic, strategy=strategy, size=size, say=console.print)
    except PrefloopError as exc:
        raise _fail(exc) from None
    click.echo(f"demo finished; report at {path}")


@cli.command()
@click.argument("data", nargs=-1, required=True)
@click.option(
    "--test",
    "test_file",
    default=None,
    metavar="FILE",
    help="Independent labelled test file (any format `ingest` reads); default: --test-fraction of DATA.",
)
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    default=("random", "bald", "noise_aware", "epig", "diverse:bald"),
    show_default=True,
    help="Acquisition strategy to compare (repeat the option).",
)
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--seed-size", default=40, show_default=True, help="Labels in the initial seed set.")
@click.option("--batch", "batch_size", default=40, show_default=True, help="Labels acquired per round.")
@click.option("--rounds", default=8, show_default=True)
@click.option("--test-fraction", default=0.25, show_default=True, help="Held-out share for the curves (no --test).")
@click.option("--noise", "noise_rate", default=0.0, show_default=True, help="Simulated annotator error rate.")
@click.option(
    "--mode",
    type=click.Choice(["heads", "finetune", "adapted"]),
    default="heads",
    show_default=True,
    help="Model mode trained every round (finetune costs minutes per round on a CPU).",
)
@click.option("-k", "--members", "k", type=click.IntRange(1), default=5, show_default=True, help="Ensemble size.")
@click.option("--scratch", is_flag=True, help="Retrain from scratch each round instead of warm-starting.")
@click.option("--strict", is_flag=True, help="Fail on degenerate rows (identical responses) instead of skipping.")
@click.option("--out", default="simulation", show_default=True, help="Folder for curves, plot and summary.")
def simulate(
    data: tuple[str, ...],
    test_file: str | None,
    strategies: tuple[str, ...],
    seeds: str,
    seed_size: int,
    batch_size: int,
    rounds: int,
    test_fraction: float,
    noise_rate: float,
    mode: Literal["heads", "finetune", "adapted"],  # the --mode choices
    k: int,
    scratch: bool,
    strict: bool,
    out: str,
) -> None:
    """Offline active-learning experiment on labelled files: strategies vs random, several seeds.

    The files' labels play the simulated annotators; nothing is written to the store. Several
    DATA files form one pool; --test scores every seed on an independent file. Degenerate
    rows (two identical responses) are skipped and counted.

    \b
    Examples:
      prefloop simulate ../shared/data/hh-rlhf-harmless-base-test.dev.jsonl.gz \\
          --strategy random --strategy bald --seeds 0,1,2 --out sim/
      prefloop simulate helpful-base.jsonl.gz rejection-sampled.jsonl.gz --test held-out.jsonl \\
          --seeds 0,1,2,3,4 --seed-size 100 --batch 100 --rounds 9
    """
    from prefloop.data.ingest import read_records
    from prefloop.data.shapes import ShapeOptions
    from prefloop.loop.simulate import run_simulation
    from prefloop.model import ModelConfig

    opts = ShapeOptions(strict=strict)
    try:
        records, test_records = [], None
        for path in data:
            read = read_records(path, opts=opts, strict=strict)
            records.extend(read.records)
            click.echo(
                f"{path}: {len(read.records):,} pairs, {read.degenerate:,} degenerate rows skipped, "
                f"{read.invalid:,} invalid rows skipped",
                err=True,
            )
        if test_file:
            read = read_records(test_file, opts=opts, strict=strict)
            test_records = read.records
            click.echo(
                f"{test_file} (test): {len(read.records):,} pairs, {read.degenerate:,} degenerate rows "
                f"skipped, {read.invalid:,} invalid rows skipped",
                err=True,
            )
        result = run_simulation(
            records,
            list(strategies),
            [int(s) for s in seeds.split(",")],
            seed_size=seed_size,
            batch_size=batch_size,
            rounds=rounds,
            test_fraction=test_fraction,
            model_config=ModelConfig(mode=mode, k=k),
            out_dir=out,
            noise_rate=noise_rate,
            progress=sys.stderr.isatty(),
            warm_start=not scratch,
            test_pairs=test_records,
        )
    except (PrefloopError, ValueError) as exc:
        raise _fail(exc) from None
    click.echo(result.paths["summary"].read_text())
    click.echo("files: " + ", ".join(str(p) for p in result.paths.values()))


@cli.command()
@click.option(
    "--model",
    default=None,
    metavar="VERSION|FOLDER",
    help="Model version in the store, or a saved model folder (default: the store's newest).",
)
@click.option("--data", required=True, help="Pairs in any format `ingest` reads (labels not needed; NOT ingested).")
@reading_options
@click.option("--out", default=None, help="Folder for audit.md, audit.png and audit.json.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: probes (name, mean_shift, flip_rate, ci), ...")
@click.option(
    "--resamples",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Bootstrap resamples (pairs) for the intervals.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the bootstrap and of --max-pairs sampling.")
@click.option(
    "--max-pairs", type=click.IntRange(1), default=None, help="Audit a seeded sample of this many pairs (default: all)."
)
@pass_ctx
def audit(
    obj: Context,
    model: str | None,
    data: str,
    fmt: str | None,
    file_type: str | None,
    mapping: tuple[str, ...],
    label_map: str | None,
    label_decoder: str | None,
    out: str | None,
    as_json: bool,
    resamples: int,
    seed: int,
    max_pairs: int | None,
) -> None:
    """Counterfactual probes for reward hacking: does the reward rise for edits a judge would not reward?

    Each probe edits responses (filler, bulleted list, refusal prefix, sycophancy, unsupported
    confident claims, repetition); per probe: the mean reward shift, the share of pairs whose
    ranking flips when the lower-ranked response is probed, with 95 % bootstrap intervals; also
    reward's correlation with length and formatting. The README section "Auditing a reward model
    for reward hacking" explains how to read each number.

    \b
    Examples:
      prefloop audit --data heldout.jsonl --out audit/
      prefloop audit --model rm-1a2b3c4d --data pairs.jsonl --json
      prefloop audit --model prefloop-artifacts/models/rm-1a2b3c4d --data pairs.csv --max-pairs 500
    """
    from prefloop.loop.audit import audit_model
    from prefloop.model.audit_report import FEW_PAIRS

    data_format, data_options = _reading(fmt, file_type, mapping, label_map, label_decoder)

    try:
        report = audit_model(
            obj.engine,
            model,
            data,
            out=out,
            resamples=resamples,
            seed=seed,
            max_pairs=max_pairs,
            progress=sys.stderr.isatty(),
            data_format=data_format,
            data_options=data_options,
        )
    except PrefloopError as exc:
        raise _fail(exc) from None
    if as_json:
        _echo_json(report)
        return
    Console().print(_audit_table(report))
    length = report["length_correlation"]
    r = "–" if length["r"] is None else f"{length['r']:+.3f}"
    click.echo(f"reward–length r = {r} over {length['n']} responses")
    click.echo(
        "shift: reward(probed) − reward(response); ex-length: the shift less what the added characters alone "
        "predict; flip: the lower-ranked response, probed, now outranks the other"
    )
    if report["n_pairs"] < FEW_PAIRS:
        click.echo(f"only {report['n_pairs']} pairs: the intervals are rough; audit {FEW_PAIRS} or more", err=True)
    if out:
        click.echo("files: " + ", ".join(report["files"].values()))


def _audit_table(report: dict[str, Any]) -> Table:
    from rich import box

    def num(value: float | None, scale: float = 1.0, fmt: str = "+.3f") -> str:
        return "–" if value is None else format(scale * value, fmt)

    def interval(ci: list[float] | None, scale: float = 1.0, fmt: str = "+.3f") -> str:
        return "–" if ci is None else f"{num(ci[0], scale, fmt)} … {num(ci[1], scale, fmt)}"

    table = Table(title=f"audit of {report['model']} on {report['n_pairs']} pairs", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("probe", "shift", "95 % CI", "ex-length", "flip %", "95 % CI"):
        table.add_column(column, justify="left" if column == "probe" else "right", no_wrap=True)
    for p in report["probes"]:
        table.add_row(
            p["name"],
            num(p["mean_shift"]),
            interval(p["ci"]),
            num(p["shift_beyond_length"]),
            num(p["flip_rate"], 100, ".1f"),
            interval(p["flip_ci"], 100, ".0f"),
        )
    return table


def main() -> None:
    signal.signal(signal.SIGTERM, _raise_on_signal)
    signal.signal(signal.SIGINT, _raise_on_signal)
    cli(prog_name="prefloop")


if __name__ == "__main__":
    main()
