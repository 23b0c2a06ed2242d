"""The loop itself and experiments around it: ``sync``, ``status``, ``demo``, ``simulate``."""

from __future__ import annotations

import sys
from typing import Any

import click

from prefloop.cli.app import Context, console, echo_json, pass_ctx
from prefloop.cli.options import setting_help, setting_option
from prefloop.config import setting_field
from prefloop.config.fields import default_of
from prefloop.errors import PrefloopError

__all__ = ["demo", "pull", "serve", "simulate", "status", "sync"]


@click.command()
@setting_option("backend.name", "--backend")
@click.option("--dry-run", is_flag=True, help="Report what a real cycle would do; write nothing anywhere.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress of each long step on stderr (default: when stderr is a terminal).",
)
@pass_ctx
def sync(obj: Context, dry_run: bool, progress: bool | None) -> None:
    """One cycle: pull labels, retrain at a milestone, rescore, top up the annotation queue.

    Safe to kill and to re-run at any time; prints one JSON line per step, and every
    failure ends with {"step": "error", "type": ..., "message": ...}.

    \b
    Exit codes: 0 ok, 1 the backend answered with an error (a 500) or an unexpected error,
                2 config or store error (a refused API key too), 3 backend or database
                unreachable, or a backend call past deadline_s or paging in circles,
                4 lock held (another sync runs), 5 nothing to do, 130 SIGINT, 143 SIGTERM.
    \b
    Example (crontab, every 5 minutes):
      */5 * * * * cd /srv/prefs && prefloop sync >> sync.log 2>&1
    """
    from prefloop.config import check_secrets
    from prefloop.errors import ExitCode
    from prefloop.loop.sync import error_entry, json_logger, run_sync, save_traceback

    ctx = click.get_current_context()
    log = json_logger()
    config = None
    try:
        config = obj.config()
        check_secrets(config)
        engine = obj.engine(migrate=not dry_run)
        report = run_sync(
            engine, config, dry_run=dry_run, log=log, progress=sys.stderr.isatty() if progress is None else progress
        )
    except (Exception, KeyboardInterrupt) as exc:  # sync's own ending: a JSON line a cron log keeps
        entry = error_entry(exc)
        if obj.debug:
            import traceback

            traceback.print_exc()
        elif not isinstance(exc, PrefloopError | KeyboardInterrupt) and config is not None and not dry_run:
            entry["traceback"] = save_traceback(config.artifacts_dir, exc)
        log(entry)
        ctx.exit(entry["exit_code"])
    ctx.exit(ExitCode.OK if report.changed or dry_run else ExitCode.NOTHING_TO_DO)


@click.command()
@setting_option("serve.host")
@setting_option("serve.port")
@click.option(
    "--register",
    is_flag=True,
    help="Create or update the webhook on the Label Studio project / Argilla server first (idempotent); "
    "needs [serve] public_url.",
)
@pass_ctx
def serve(obj: Context, register: bool) -> None:
    """Receive Label Studio and Argilla webhooks: labels reach the store in seconds, not at the next poll.

    Stores each event through the same path as sync's pull (exactly once; edits, deletions), then
    a worker runs sync's later steps (milestone retrain, rescoring, top-up) debounced. Keep a cron
    sync as the safety net: it picks up whatever a webhook missed. Secrets come from the
    environment only: PREFLOOP_SERVE_LS_SECRET, PREFLOOP_SERVE_ARGILLA_SECRETS. GET / serves
    the dashboard (as prefloop dashboard), behind PREFLOOP_DASHBOARD_TOKEN when set; on an
    address other machines reach it answers 403 until that token is set.

    \b
    Example:
      export PREFLOOP_SERVE_LS_SECRET=$(openssl rand -hex 32)
      PREFLOOP_SERVE_PUBLIC_URL=http://10.0.0.5:8765 prefloop serve --register --host 0.0.0.0
    """
    from prefloop.config import check_secrets
    from prefloop.loop.serve import run_serve

    config = obj.config()
    check_secrets(config)
    run_serve(obj.engine(), config, register=register)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts.")
@pass_ctx
def status(obj: Context, as_json: bool) -> None:
    """Labels by backend and annotator, pending tasks, milestone progress, models, agreement.

    \b
    Examples:
      prefloop status
      prefloop status --json | jq .milestone
    """
    from prefloop.loop.status import status_lines, status_report

    data = status_report(obj.engine(), obj.config())
    if as_json:
        echo_json(data)
        return
    for line in status_lines(data):
        click.echo(line)


@click.command()
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
    path = run_demo(
        workdir,
        data=data,
        synthetic=synthetic,
        strategy=strategy,
        size=size,
        say=lambda line: console.print(line, markup=False),
    )
    click.echo(f"demo finished; report at {path}")


def _seeds(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        return [int(s) for s in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: comma-separated whole numbers, e.g. 0,1,2") from None


@click.command()
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
@click.option("--seeds", default="0,1,2", show_default=True, callback=_seeds, help="Comma-separated seeds.")
@click.option("--seed-size", default=40, show_default=True, help="Labels in the initial seed set.")
@click.option("--batch", "batch_size", default=40, show_default=True, help="Labels acquired per round.")
@click.option("--rounds", default=8, show_default=True, help="Acquisition rounds after the seed set.")
@click.option("--test-fraction", default=0.25, show_default=True, help="Held-out share for the curves (no --test).")
@click.option("--noise", "noise_rate", default=0.0, show_default=True, help="Simulated annotator error rate.")
@click.option(
    "--mode",
    type=click.Choice(["heads", "finetune", "adapted"]),
    default=default_of(setting_field("model.mode")),
    show_default=True,
    help=setting_help("model.mode")
    + " Here: the model trained every round, by default the mode the loop trains (heads is the fast one; "
    "finetune costs minutes per round).",
)
@click.option(
    "-k",
    "--members",
    "k",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help=setting_help("model.k"),
)
@click.option("--scratch", is_flag=True, help="Retrain from scratch each round instead of warm-starting.")
@click.option("--strict", is_flag=True, help="Fail on degenerate rows (identical responses) instead of skipping.")
@click.option("--out", default="simulation", show_default=True, help="Folder for curves, plot and summary.")
def simulate(
    data: tuple[str, ...],
    test_file: str | None,
    strategies: tuple[str, ...],
    seeds: list[int],
    seed_size: int,
    batch_size: int,
    rounds: int,
    test_fraction: float,
    noise_rate: float,
    mode: Any,  # one of the --mode choices
    k: int,
    scratch: bool,
    strict: bool,
    out: str,
) -> None:
    """Offline active-learning experiment on labelled files: strategies vs random, several seeds.

    The files' labels play the simulated annotators; nothing is written to the store. Several
    DATA files form one pool; --test scores every seed on an independent file. Degenerate
    rows (two identical responses) are skipped and counted. prefloop.toml is not read: the
    model is [model]'s defaults with --mode and -k, so by default the mode the loop trains.

    \b
    Examples:
      prefloop simulate ../shared/data/hh-rlhf-harmless-base-test.dev.jsonl.gz \\
          --strategy random --strategy bald --seeds 0,1,2 --out sim/
      prefloop simulate helpful-base.jsonl.gz rejection-sampled.jsonl.gz --test held-out.jsonl \\
          --seeds 0,1,2,3,4 --seed-size 100 --batch 100 --rounds 9
      prefloop simulate pairs.jsonl --mode heads --strategy random --strategy length_aware:noise_aware
    """
    from prefloop.config import ModelConfig
    from prefloop.loop.simulate import simulate_files

    result = simulate_files(
        data,
        test_file,
        strict=strict,
        say=lambda line: click.echo(line, err=True),
        strategies=list(strategies),
        seeds=seeds,
        seed_size=seed_size,
        batch_size=batch_size,
        rounds=rounds,
        test_fraction=test_fraction,
        model_config=ModelConfig(mode=mode, k=k),
        out_dir=out,
        noise_rate=noise_rate,
        progress=sys.stderr.isatty(),
        warm_start=not scratch,
    )
    click.echo(result.paths["summary"].read_text())
    click.echo("files: " + ", ".join(str(p) for p in result.paths.values()))


@click.command()
@setting_option("backend.name", "--backend")
@setting_option("backend.project", "--project")
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="CANONICAL=KEY",
    help="Name a text where the project's fields leave it ambiguous: prompt=KEY, response_a=KEY, response_b=KEY.",
)
@click.option(
    "--label-map",
    default=None,
    metavar="VALUE=a|b|tie,...",
    help="What a choice's text means where it names no side, e.g. 'Answer 1=a,Answer 2=b,Same=tie'.",
)
@pass_ctx
def pull(obj: Context, mapping: tuple[str, ...], label_map: str | None) -> None:
    """Bring the labels of an existing project (one prefloop did not create) into the store.

    Reads the Label Studio project titled --project (or the Argilla dataset of that name) through
    the backend's pull path, finding its texts and verdicts as `ingest` does for the tool's export
    files. Run it again to bring edits (a new version, the old one kept) and deletions; nothing is
    stored twice. The project is never changed, and never created. Then let `sync` run on a new
    project ([backend] project) to go on labelling.

    \b
    Examples:
      prefloop pull --backend label_studio --project "RLHF round 2"
      prefloop pull --backend argilla --project ultrafeedback-prefs --label-map 'good=a,bad=b'
    """
    from prefloop.backends import make_backend
    from prefloop.cli.options import reading
    from prefloop.config import backend_settings, check_secrets
    from prefloop.loop.adopt import adopt_project

    config = obj.config()
    check_secrets(config)
    engine = obj.engine(create=True)
    _, opts = reading(None, None, mapping, label_map, None)
    backend = make_backend(config.backend.name, backend_settings(config))
    echo_json(adopt_project(engine, backend, opts))
