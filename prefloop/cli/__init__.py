"""A thin click skin over prefloop's library calls, one module per command group.

``app`` holds the group, the global options and the one error-to-exit path; ``options`` the
flags made from settings' fields and the file-reading options; ``data``, ``model``, ``loop``,
``annotators``, ``config`` and ``dashboard`` the commands. Each command's help carries an example.
"""

from __future__ import annotations

from prefloop.cli.annotators import annotators, gold_group
from prefloop.cli.app import cli, main
from prefloop.cli.config import config_group
from prefloop.cli.dashboard import dashboard
from prefloop.cli.data import export, ingest, init, stats
from prefloop.cli.loop import demo, pull, serve, simulate, status, sync
from prefloop.cli.model import audit, evaluate, score, train

__all__ = ["cli", "main"]

for _command in (
    init,
    ingest,
    export,
    stats,
    train,
    score,
    evaluate,
    audit,
    sync,
    pull,
    serve,
    status,
    demo,
    simulate,
    annotators,
    gold_group,
    config_group,
    dashboard,
):
    cli.add_command(_command)
