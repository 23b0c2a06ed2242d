"""The ``prefloop`` group: global options, the one configuration, and the one error-to-exit path.

Every command is registered on ``cli`` by ``prefloop/cli/__init__.py``; a command parses its
options, calls one library function and renders the result. Errors are not caught in the
commands: ``PrefloopGroup.invoke`` turns every one into ``Error: <message>`` and its exit code
(``prefloop.errors.exit_code_for``); only ``sync`` ends with a JSON line instead.
"""

from __future__ import annotations

import json
import os
import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from prefloop.cli.options import FLAGS, setting_help
from prefloop.config import SettingDeprecationWarning
from prefloop.errors import PrefloopError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from prefloop.config import LoopConfig

__all__ = ["Context", "cli", "console", "echo_json", "main", "pass_ctx"]

#: progress and notes go to stderr; stdout keeps what scripts read
console = Console(stderr=True)


class Context:
    """What every command shares: the global options and the one effective configuration."""

    def __init__(self, db: str | None, config_path: str | None, debug: bool = False) -> None:
        self.db_flag = db
        self.config_path = config_path
        self.debug = debug
        self._config: LoopConfig | None = None
        self._engines: list[Engine] = []

    def config(self) -> LoopConfig:
        """The effective configuration (flags > environment > prefloop.toml > defaults), loaded and checked once.

        The command's setting options (``options.setting_option``) are applied as flags here.
        """
        from prefloop.loop.settings import load_settings

        if self._config is None:
            flags: dict[str, tuple[Any, str]] = click.get_current_context().meta.get(FLAGS, {})
            self._config = load_settings(
                self.config_path,
                db=self.db_flag,
                overrides={key: value for key, (value, _) in flags.items()},
                flags={key: flag for key, (_, flag) in flags.items()},
            )
        return self._config

    def engine(self, create: bool = False, migrate: bool = True) -> Engine:
        """The store of the effective configuration; only ``create`` makes a new one. Named on stderr."""
        from prefloop.store.db import describe_url, open_store

        url = self.config().db_url()
        engine = open_store(url, create=create, migrate=migrate)
        click.echo(f"store: {describe_url(url)}", err=True)
        self._engines.append(engine)
        return engine

    def close(self) -> None:
        """Close every store connection this command opened (run when the command ends)."""
        while self._engines:
            self._engines.pop().dispose()


pass_ctx = click.make_pass_decorator(Context)


def echo_json(data: Any) -> None:
    """One JSON object on stdout (keys sorted, anything else as text)."""
    click.echo(json.dumps(data, default=str, sort_keys=True))


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


def _say_error(exc: BaseException) -> int:
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


def _one_line_deprecations(original: Any) -> Any:
    """``warnings.showwarning`` that prints a setting's deprecation as ``Warning: ...``, others as before."""

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, SettingDeprecationWarning):
            click.echo(f"Warning: {message}", err=True)
        else:
            original(message, category, *args, **kwargs)

    return show


@contextmanager
def private_files() -> Iterator[None]:
    """Files and folders a command creates (stores, reports, exports, weights) are its user's only:
    0600 / 0700, or stricter where the user's umask already is."""
    before = os.umask(0o077)
    os.umask(before | 0o077)
    try:
        yield
    finally:
        os.umask(before)


class PrefloopGroup(click.Group):
    """Hoists global options and maps every error to its message and exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            args = _hoist_global_options(list(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        from prefloop.redact import redacting_streams

        with private_files(), redacting_streams(), warnings.catch_warnings():
            warnings.simplefilter("always", SettingDeprecationWarning)
            warnings.showwarning = _one_line_deprecations(warnings.showwarning)
            try:
                return super().invoke(ctx)
            except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
                raise
            except (Exception, KeyboardInterrupt) as exc:
                debug = isinstance(ctx.obj, Context) and ctx.obj.debug
                if debug and not isinstance(exc, PrefloopError | KeyboardInterrupt):
                    import traceback

                    traceback.print_exc()  # here, not by the interpreter: the stream still masks secrets
                    ctx.exit(1)
                ctx.exit(_say_error(exc))


def _raise_on_signal(signum: int, _frame: Any) -> None:
    from prefloop.errors import Interrupted

    raise Interrupted(signal.Signals(signum).name)


@click.group(cls=PrefloopGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", default=None, help=setting_help("db") + ". Before or after the subcommand.")
@click.option(
    "--config",
    "config_path",
    default=None,
    help="prefloop.toml to read (default: env PREFLOOP_CONFIG, else ./prefloop.toml if present). "
    "Before or after the subcommand.",
)
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.version_option(package_name="prefloop", help="Show the version and exit.")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config_path: str | None, debug: bool) -> None:
    """prefloop: active learning between human preference annotators and a reward model.

    Settings come from flags, then the environment (PREFLOOP_<SECTION>_<KEY>), then
    prefloop.toml, then defaults (`prefloop config show` prints them with their sources).
    Only `init` and `ingest` create a store.

    \b
    Example:
      prefloop init && prefloop ingest pairs.jsonl && prefloop stats
    """
    ctx.obj = Context(db, config_path, debug)
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    """The ``prefloop`` console script: SIGINT and SIGTERM end a command as ``Interrupted`` (exit 130 / 143)."""
    signal.signal(signal.SIGTERM, _raise_on_signal)
    signal.signal(signal.SIGINT, _raise_on_signal)
    cli(prog_name="prefloop")
