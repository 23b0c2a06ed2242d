"""``prefloop dashboard``: one read-only page that joins the loop's rooms — what the model learned (learning
curve, reliability), from whom (labels over time, agreement), what it asks next (the queue, the pool's
uncertainty) and whether the loop is healthy. Server-rendered from the store (``data.py`` → ``page.py``),
served by ``app.py`` (or mounted on ``prefloop serve`` through ``dashboard_routes``), or written once as a
self-contained file (``write_snapshot``)."""

from __future__ import annotations

from prefloop.loop.dashboard.app import (
    TOKEN_ENV,
    check_bind,
    dashboard_app,
    dashboard_routes,
    guarded_routes,
    is_loopback,
    serve_dashboard,
    write_snapshot,
)
from prefloop.loop.dashboard.data import PANELS, dashboard_data
from prefloop.loop.dashboard.page import render_page

__all__ = [
    "PANELS",
    "TOKEN_ENV",
    "check_bind",
    "dashboard_app",
    "dashboard_data",
    "dashboard_routes",
    "guarded_routes",
    "is_loopback",
    "render_page",
    "serve_dashboard",
    "write_snapshot",
]
