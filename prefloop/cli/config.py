"""The settings: ``config show`` and ``config init``."""

from __future__ import annotations

from pathlib import Path

import click

from prefloop.cli.app import Context, echo_json, pass_ctx

__all__ = ["config_group"]


@click.group(name="config")
def config_group() -> None:
    """The one effective configuration: flags > environment > prefloop.toml > defaults.

    \b
    Example:
      prefloop config init && prefloop config show
    """


@config_group.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="The settings as one JSON object (no sources).")
@pass_ctx
def config_show(obj: Context, as_json: bool) -> None:
    """Print the effective configuration as TOML, each value with its source, secrets masked.

    \b
    Examples:
      LABEL_STUDIO_API_KEY=... prefloop config show
      prefloop config show --config /srv/prefloop/prefloop.toml --json
      PREFLOOP_MODEL_K=3 prefloop config show | grep '^k '
    """
    from prefloop.config import masked, render_config

    config = obj.config()
    if as_json:
        echo_json(masked(config))
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
    from prefloop.config import starter_config
    from prefloop.errors import InvalidRequest

    target = Path(path)
    if target.exists() and not force:
        raise InvalidRequest(f"{target} exists; pass --force to overwrite it")
    target.write_text(starter_config(), encoding="utf-8")
    click.echo(f"wrote {target}; edit it, then check it with `prefloop config show`")
