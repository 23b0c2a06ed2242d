"""The dashboard as HTML: a Jinja2 template with autoescaping on (every text from an annotator, a model or a
file reaches the page as text), the charts' specs as JSON a script element cannot be broken out of, and the
vendored Vega scripts linked (live page) or inlined (``--snapshot``: one self-contained file)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from prefloop.loop.dashboard.charts import chart_specs
from prefloop.loop.dashboard.data import PANELS

__all__ = ["SCRIPTS", "render_page", "static_file"]

#: the vendored chart library (Vega, Vega-Lite, vega-embed; BSD-3-Clause, licences beside them), in load order
SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "dashboard.js")


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("prefloop.loop.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["age"] = _age
    return env


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@cache
def static_file(name: str) -> str:
    """A vendored script's text (only the names in ``SCRIPTS``)."""
    if name not in SCRIPTS:
        raise KeyError(name)
    return resources.files("prefloop.loop.dashboard").joinpath("static", name).read_text(encoding="utf-8")


def _script_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` left to end the element."""
    text = json.dumps(data, sort_keys=True, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _inline(script: str) -> str:
    return script.replace("</script", "<\\/script")


def render_page(
    data: dict[str, Any],
    *,
    panels: tuple[str, ...] = tuple(PANELS),
    snapshot: bool = False,
    refresh_s: int = 0,
    base: str = "",
) -> str:
    """The page of ``panels`` (ids of ``PANELS``). ``snapshot``: scripts inlined, no reload, no links to the
    server; otherwise scripts come from ``{base}/static/`` and the page reloads every ``refresh_s`` seconds."""
    specs = chart_specs(data["panels"])
    scripts = [_inline(static_file(name)) for name in SCRIPTS] if snapshot else []
    from markupsafe import Markup

    return (
        _environment()
        .get_template("page.html")
        .render(
            data=data,
            p=data["panels"],
            shown=panels,
            titles=PANELS,
            specs={name: Markup(_script_json(spec)) for name, spec in specs.items()},
            inline_scripts=[Markup(s) for s in scripts],
            script_names=SCRIPTS,
            snapshot=snapshot,
            refresh_s=refresh_s,
            base=base,
        )
    )
