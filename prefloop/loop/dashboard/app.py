"""The dashboard over HTTP (Starlette): read-only pages, the vendored scripts, an optional token.

    GET /                  every panel
    GET /panel/{name}      one panel (model, labels, agreement, queue, audit, health)
    GET /static/{file}     the vendored Vega scripts

``dashboard_routes`` are the routes alone; ``guarded_routes`` are the same, each behind the token, for
``prefloop serve`` to put beside its webhooks (which keep their own checks); ``dashboard_app`` wraps them with
the token check; ``serve_dashboard`` runs that app with uvicorn.
Nothing here writes: every route answers GET (and HEAD) only, anything else is 405.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from prefloop.config import LoopConfig
from prefloop.errors import ConfigError
from prefloop.loop.dashboard.data import PANELS, dashboard_data
from prefloop.loop.dashboard.page import SCRIPTS, render_page, static_file

__all__ = [
    "COOKIE",
    "TOKEN_ENV",
    "dashboard_app",
    "dashboard_routes",
    "guarded_routes",
    "serve_dashboard",
    "write_snapshot",
]

TOKEN_ENV = "PREFLOOP_DASHBOARD_TOKEN"
COOKIE = "prefloop_dashboard"
#: the browser may load scripts and styles from this server only, and connect nowhere else
CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def dashboard_routes(
    engine: Engine,
    config: LoopConfig,
    *,
    base: str = "",
    webhooks: Callable[[], dict[str, Any]] | None = None,
) -> list[Route]:
    """The dashboard's routes (read-only, GET only), reading ``engine`` at each request; ``base`` is the
    prefix the routes are mounted under, for the page's own links; ``webhooks`` gives the serving process's
    webhook counts to the health panel (``prefloop serve``)."""
    refresh = config.dashboard.refresh_s

    async def page(request: Request) -> Response:
        name = request.path_params.get("name")
        if name is not None and name not in PANELS:
            return PlainTextResponse(
                f"no panel {name!r}; panels: {', '.join(PANELS)}", status_code=404, headers=HEADERS
            )
        data = await run_in_threadpool(dashboard_data, engine, config, webhooks)
        shown = (name,) if name else tuple(PANELS)
        html = render_page(data, panels=shown, refresh_s=refresh, base=base)
        return HTMLResponse(html, headers=HEADERS)

    async def static(request: Request) -> Response:
        name = request.path_params["file"]
        if name not in SCRIPTS:
            return PlainTextResponse("not found", status_code=404, headers=HEADERS)
        return Response(
            static_file(name),
            media_type="text/javascript; charset=utf-8",
            headers={**HEADERS, "Cache-Control": "max-age=3600"},
        )

    return [
        Route("/", page, methods=["GET"]),
        Route("/panel/{name}", page, methods=["GET"]),
        Route("/static/{file}", static, methods=["GET"]),
    ]


class TokenGate:
    """ASGI middleware: every request shows the token (``Authorization: Bearer``, the cookie this gate sets,
    or ``?token=`` once — answered with the cookie and a redirect that drops it from the address bar)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    def _ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        if self._ok(bearer) or self._ok(request.cookies.get(COOKIE)):
            await self.app(scope, receive, send)
            return
        response: Response
        if self._ok(request.query_params.get("token")):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            url = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(url, status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
        else:
            response = PlainTextResponse(
                f"this dashboard needs its token: open it once with ?token=<the value of {TOKEN_ENV}>, "
                "or send Authorization: Bearer <token>",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        await response(scope, receive, send)


class Refused:
    """ASGI app: 403 with ``message`` to every request (the dashboard on an open address without a token)."""

    def __init__(self, message: str) -> None:
        self.message = message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse(self.message, status_code=403)(scope, receive, send)


def guarded_routes(
    engine: Engine, config: LoopConfig, host: str, webhooks: Callable[[], dict[str, Any]] | None = None
) -> list[Route]:
    """The dashboard's routes for an app that serves other routes too (``prefloop serve`` on ``host``): each
    behind ``[dashboard] token`` when one is set. Without a token on an address other machines reach, each
    answers 403 naming the variable, and the rest of the app keeps serving (the webhooks must stay reachable)."""
    token = config.dashboard.token
    routes = dashboard_routes(engine, config, webhooks=webhooks)
    if token:
        return [Route(r.path, TokenGate(r.app, token), methods=["GET"], name=r.name) for r in routes]
    if not is_loopback(host):
        refused = Refused(
            f"the dashboard is off: this server listens on {host}, which other machines reach, and no token is "
            f"set; set {TOKEN_ENV} (readers then open the page once with ?token=...), or serve on 127.0.0.1"
        )
        return [Route(r.path, refused, methods=["GET"], name=r.name) for r in routes]
    return routes


def dashboard_app(engine: Engine, config: LoopConfig) -> Starlette:
    """The dashboard as its own app (``prefloop dashboard``), behind ``[dashboard] token`` when one is set."""
    token = config.dashboard.token
    middleware = [Middleware(TokenGate, token=token)] if token else []
    return Starlette(routes=dashboard_routes(engine, config), middleware=middleware)


def is_loopback(host: str) -> bool:
    """``host`` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(config: LoopConfig) -> None:
    """Refuse to listen beyond this machine without a token (before anything is opened)."""
    host = config.dashboard.host
    if not is_loopback(host) and not config.dashboard.token:
        raise ConfigError(
            f"[dashboard] host {host!r} is reachable from other machines: set a token in {TOKEN_ENV} "
            "(readers then open the page once with ?token=...), or listen on 127.0.0.1"
        )


def serve_dashboard(engine: Engine, config: LoopConfig, *, say: Callable[[str], None] = print) -> None:
    """Serve ``dashboard_app`` with uvicorn at ``[dashboard] host:port`` until interrupted; ``say`` gets the
    address once the socket is bound (port 0: the port the system chose)."""
    import uvicorn

    check_bind(config)
    host, port = config.dashboard.host, config.dashboard.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"[dashboard] cannot listen on {host}:{port} ({exc.strerror}): choose another --port, or 0 for any free one"
        ) from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    say(f"dashboard at http://{shown}:{bound}/ (read-only; Ctrl-C stops it)")
    app = dashboard_app(engine, config)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=5))
    server.run(sockets=[sock])


def write_snapshot(engine: Engine, config: LoopConfig, path: str) -> Path:
    """Write the whole page as one self-contained HTML file (scripts and data inlined, no reload); returns it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(dashboard_data(engine, config), snapshot=True), encoding="utf-8")
    return out
