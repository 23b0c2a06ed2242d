"""The reward model: ``train``, ``score``, ``eval``, ``audit``."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prefloop.cli.app import Context, console, echo_json, pass_ctx
from prefloop.cli.options import reading, reading_options, setting_option

__all__ = ["audit", "evaluate", "score", "train"]


@click.command()
@setting_option("model.mode", "--mode")
@click.option(
    "--from",
    "parent",
    default=None,
    metavar="VERSION",
    help="Warm-start from this model version: new labels plus a replay sample of old ones.",
)
@setting_option("model.backbone", "--backbone")
@setting_option("model.k", "-k", "--members")
@setting_option("model.epochs", "--epochs")
@setting_option("model.max_length", "--max-length")
@setting_option("model.seed", "--seed")
@setting_option("annotators.aggregate", "--aggregate")
@click.option(
    "--dimension",
    "dimensions",
    multiple=True,
    metavar="NAME",
    help="Train on this dimension's labels; repeat for ONE model with a head per dimension (shared backbone; "
    "--mode heads or adapted). Default: [objectives] dimensions, else overall.",
)
@setting_option("model.debias", "--debias")
@setting_option("model.debias_method", "--debias-method")
@pass_ctx
def train(obj: Context, parent: str | None, dimensions: tuple[str, ...]) -> None:
    """Train a reward-model ensemble on the store's labels; prints the new version.

    Every [model] setting comes from prefloop.toml (--config names another file) or
    PREFLOOP_MODEL_<KEY>; the flags below override them for this run.

    \b
    Examples:
      prefloop train                              # adapted: fine-tune MiniLM once, K=5 heads on it
      prefloop train --mode heads                 # frozen MiniLM + K=5 heads: seconds, lower accuracy
      prefloop train --mode finetune -k 1 --epochs 2
      prefloop train --from rm-1a2b3c4d           # incremental: new labels + replay
      prefloop train --aggregate dawid-skene      # soft targets weighted by annotator reliability
      prefloop train --mode heads --dimension helpful --dimension harmless   # one model, two heads
      prefloop train --debias length              # keep length out of the reward (method 'project_balanced')
      prefloop train --config experiment.toml     # [model] settings from another file
    """
    from prefloop.loop.train import train_objectives

    config = obj.config()
    result = train_objectives(
        obj.engine(),
        config.model,
        config.artifacts_dir,
        list(dimensions) or config.objectives.dimensions,
        parent=parent,
        progress=sys.stderr.isatty(),
        aggregate=config.annotators.aggregate,
        annotators=config.annotators,
    )
    for warning in result.report.get("warnings", []):
        console.print(f"warning: {warning}", markup=False, highlight=False)
    console.print(
        f"trained on {result.n_new} labels"
        + (f" (+ replay from {result.n_replay_pool} older, parent {result.parent})" if result.parent else ""),
        markup=False,
    )
    click.echo(result.name)


@click.command()
@click.option("--model", default=None, metavar="VERSION", help="Model version (default: the newest).")
@click.option("--all", "all_pairs", is_flag=True, help="Score every pair, not only unlabeled pool pairs.")
@pass_ctx
def score(obj: Context, model: str | None, all_pairs: bool) -> None:
    """Store the model's predictions (P(a≻b) per member, P(tie), spread) for the pool.

    A model with a head per dimension stores one prediction per dimension, plus the combined
    reward ("combined") when [objectives] sets weights or maximize + constraints.

    \b
    Examples:
      prefloop score --model rm-1a2b3c4d
      accelerate launch --multi_gpu --num_processes 2 -m prefloop score   # 2 processes (GPUs, or CPUs)
    """
    from prefloop.loop.reward import score_pool
    from prefloop.objectives import combined_reward

    spec = combined_reward(obj.config().objectives)
    from prefloop.model import processes

    name, n = score_pool(obj.engine(), model, all_pairs=all_pairs, progress=sys.stderr.isatty(), objectives=spec)
    if processes.is_main():  # under `accelerate launch` every process scores a share; one reports
        click.echo(f"{name}: {n} pairs scored")


@click.command(name="eval")
@click.option("--model", default=None, metavar="VERSION", help="Model version (default: the newest).")
@click.option("--data", default=None, help="Labeled file in any format `ingest` reads (NOT ingested).")
@reading_options
@click.option("--split", default="test", show_default=True, help="Store split to evaluate on without --data.")
@click.option("--out", default=None, help="Folder for reliability.png, reward_vs_length.png and length_groups.png.")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object with accuracy, log_loss, ece, n, length_groups, ..."
)
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

    Also accuracy by length group (the human chose the longer / the shorter response, or lengths
    near-equal) with 95 % bootstrap intervals and the worst group; a worst group below 0.5 is
    flagged with a warning.

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
    data_format, data_options = reading(fmt, file_type, mapping, label_map, label_decoder)
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
    if as_json:
        echo_json(metrics)
        return
    table = Table(title=f"evaluation of {escape(str(metrics['model']))}", show_header=False)
    # the group table below supersedes the older by-side split (which counts near-equal pairs on a side);
    # --json keeps both
    superseded = _BY_SIDE if metrics.get("length_groups") else ()
    for key, value in metrics.items():
        if not isinstance(value, dict | list) and key not in superseded:
            table.add_row(escape(key), f"{value:.4f}" if isinstance(value, float) else escape(str(value)))
    Console().print(table)
    if metrics.get("length_groups"):
        _echo_length_groups(metrics["length_groups"])


_BY_SIDE = ("acc_preferred_shorter", "acc_preferred_longer", "n_preferred_shorter", "n_preferred_longer")


def _echo_length_groups(groups: dict[str, Any]) -> None:
    """The length-group table, the worst-group line and, for a flagged model, the warning."""
    from rich import box

    from prefloop.model.length_groups import bias_warning, group_rows, worst_group_line

    table = Table(title="accuracy by length group", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("group", "n", "share", "accuracy", "95 % CI"):
        table.add_column(column, justify="left" if column == "group" else "right", no_wrap=True)
    for row in group_rows(groups):
        table.add_row(*row)
    Console().print(table)
    click.echo(worst_group_line(groups))
    warning = bias_warning(groups)
    if warning:
        click.echo(warning)


@click.command()
@click.option(
    "--model",
    default=None,
    metavar="VERSION|FOLDER",
    help="Model version in the store, or a saved model folder (default: the store's newest).",
)
@click.option(
    "--data",
    required=True,
    help="Pairs in any format `ingest` reads (NOT ingested); labels not needed, but where given, accuracy by "
    "length group too.",
)
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
    reward's correlation with length and formatting. Where the file labels pairs, also accuracy by
    length group and the worst group, flagged below 0.5 as in `eval`. The README section "Auditing a reward model
    for reward hacking" explains how to read each number.

    \b
    Examples:
      prefloop audit --data heldout.jsonl --out audit/
      prefloop audit --model rm-1a2b3c4d --data pairs.jsonl --json
      prefloop audit --model prefloop-artifacts/models/rm-1a2b3c4d --data pairs.csv --max-pairs 500
    """
    from prefloop.loop.audit import audit_model
    from prefloop.model.audit_report import FEW_PAIRS

    data_format, data_options = reading(fmt, file_type, mapping, label_map, label_decoder)
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
    if as_json:
        echo_json(report)
        return
    Console().print(_audit_table(report))
    length = report["length_correlation"]
    r = "–" if length["r"] is None else f"{length['r']:+.3f}"
    click.echo(f"reward–length r = {r} over {length['n']} responses")
    click.echo(
        "shift: reward(probed) − reward(response); ex-length: the shift less what the added characters alone "
        "predict; flip: the lower-ranked response, probed, now outranks the other"
    )
    if report.get("length_groups"):
        groups = report["length_groups"]
        accuracy = "–" if groups["accuracy"] is None else f"{groups['accuracy']:.3f}"
        click.echo(f"accuracy {accuracy} on {groups['n_labelled_pairs']} labelled pairs")
        _echo_length_groups(groups)
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

    title = f"audit of {escape(str(report['model']))} on {report['n_pairs']} pairs"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("probe", "shift", "95 % CI", "ex-length", "flip %", "95 % CI"):
        table.add_column(column, justify="left" if column == "probe" else "right", no_wrap=True)
    for p in report["probes"]:
        table.add_row(
            escape(str(p["name"])),
            num(p["mean_shift"]),
            interval(p["ci"]),
            num(p["shift_beyond_length"]),
            num(p["flip_rate"], 100, ".1f"),
            interval(p["flip_ci"], 100, ".0f"),
        )
    return table
