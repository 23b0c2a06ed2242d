"""``prefloop dashboard``: the loop's read-only page, served or written once as a file."""

from __future__ import annotations

import click

from prefloop.cli.app import Context, console, pass_ctx
from prefloop.cli.options import setting_option

__all__ = ["dashboard"]


@click.command()
@setting_option("dashboard.host", "--host")
@setting_option("dashboard.port", "--port")
@click.option(
    "--snapshot",
    default=None,
    metavar="FILE",
    help="Write the page as one self-contained HTML file (charts included) and exit, instead of serving it.",
)
@pass_ctx
def dashboard(obj: Context, snapshot: str | None) -> None:
    """A read-only page of the loop: learning curve, labels and agreement, the queue, health.

    Served at 127.0.0.1 by default; any other --host needs a token in PREFLOOP_DASHBOARD_TOKEN
    (readers open the page once with ?token=..., or send Authorization: Bearer). The page reloads
    itself every [dashboard] refresh_s seconds.

    \b
    Examples:
      prefloop dashboard --port 8766
      prefloop dashboard --snapshot loop.html
      PREFLOOP_DASHBOARD_TOKEN=$(openssl rand -hex 16) prefloop dashboard --host 0.0.0.0
    """
    from prefloop.loop.dashboard import check_bind, serve_dashboard, write_snapshot

    config = obj.config()
    if snapshot is None:
        check_bind(config)  # refused before the store is opened
    engine = obj.engine()
    if snapshot is not None:
        click.echo(f"dashboard snapshot written to {write_snapshot(engine, config, snapshot)}")
        return
    serve_dashboard(engine, config, say=lambda line: console.print(line, highlight=False))
