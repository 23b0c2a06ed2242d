"""``prefloop serve``: labels in seconds, through the annotation servers' webhooks.

The receiver (``app.py``) stores each delivery through the poll's store path; a worker
(``worker.py``) runs sync's steps after a pull when labels have arrived. ``sync`` on a schedule
stays the safety net: anything a webhook missed is pulled by the next poll, with no duplicate.
The same app serves the dashboard at ``GET /`` (``prefloop.loop.dashboard``), behind its own token.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette

from prefloop.backends import AnnotationBackend, make_backend
from prefloop.config import LoopConfig, backend_settings, env_name
from prefloop.errors import ConfigError
from prefloop.loop.dashboard import TOKEN_ENV, guarded_routes, is_loopback
from prefloop.loop.serve.app import SOURCES, Receiver, build_app
from prefloop.loop.serve.auth import check_argilla_signature, check_ls_token
from prefloop.loop.serve.metrics import ServeMetrics
from prefloop.loop.serve.worker import FollowUpWorker
from prefloop.store.db import session_scope

__all__ = [
    "SOURCES",
    "argilla_secret_file",
    "build_serve_app",
    "dashboard_access",
    "register_webhooks",
    "run_serve",
    "webhook_url",
]


def argilla_secret_file(config: LoopConfig) -> Path:
    """Where ``--register`` keeps the signing secret Argilla made (readable by the owner only)."""
    return Path(config.artifacts_dir) / "serve" / "argilla-webhook-secret"


def webhook_url(config: LoopConfig, backend: str) -> str:
    """The URL the annotation server posts to: ``[serve] public_url`` + ``/webhooks/<source>``."""
    if not config.serve.public_url:
        raise ConfigError(
            "[serve] public_url is not set: set it (or PREFLOOP_SERVE_PUBLIC_URL) to the URL at which the "
            f"{backend} server reaches this receiver, e.g. http://10.0.0.5:{config.serve.port}"
        )
    return f"{config.serve.public_url.rstrip('/')}/webhooks/{SOURCES[backend]}"


def _argilla_secrets(config: LoopConfig) -> list[Webhook]:
    texts = [s.strip() for s in (config.serve.argilla_secrets or "").split(",") if s.strip()]
    stored = argilla_secret_file(config)
    if stored.is_file():
        texts.append(stored.read_text(encoding="utf-8").strip())
    secrets = []
    for number, value in enumerate(texts, 1):
        try:
            secrets.append(Webhook(value))
        except Exception:  # the value itself never goes into the message
            raise ConfigError(
                f"Argilla webhook secret #{number} (of {env_name('serve.argilla_secrets')} or {stored}) is not "
                "a whsec_ secret; copy it as Argilla returned it"
            ) from None
    return secrets


def _receiver(config: LoopConfig, backend: AnnotationBackend) -> Receiver:
    per_task = config.backend.annotators_per_pair
    if backend.name == "label_studio":
        secret = config.serve.ls_secret
        if not secret:
            raise ConfigError(
                f"no secret for Label Studio's webhooks: set {env_name('serve.ls_secret')} to a long random "
                "value (prefloop serve --register puts it in the webhook's X-Prefloop-Token header)"
            )
        return Receiver(backend, lambda body, headers: check_ls_token(headers, secret), per_task)
    if backend.name == "argilla":
        secrets = _argilla_secrets(config)
        if not secrets:
            raise ConfigError(
                "no secret for Argilla's webhooks: run prefloop serve --register (it keeps the secret Argilla "
                f"makes in {argilla_secret_file(config)}) or set {env_name('serve.argilla_secrets')}"
            )
        return Receiver(backend, lambda body, headers: check_argilla_signature(body, headers, secrets), per_task)
    raise ConfigError(f"backend {backend.name!r} sends no webhooks; prefloop serve takes label_studio or argilla")


def register_webhooks(config: LoopConfig, backend: AnnotationBackend) -> dict[str, Any]:
    """Create or update the webhook on the server (idempotent); keep Argilla's secret for the receiver."""
    url = webhook_url(config, backend.name)
    headers: dict[str, str] = {}
    if backend.name == "label_studio":
        if not config.serve.ls_secret:
            raise ConfigError(f"set {env_name('serve.ls_secret')} before --register: the webhook sends it back")
        headers = {"X-Prefloop-Token": config.serve.ls_secret}
    secret = backend.register_webhook(url, headers)
    out: dict[str, Any] = {"step": "register", "backend": backend.name, "url": url, "events": backend.webhook_events}
    if secret:
        path = argilla_secret_file(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)  # an existing file keeps its old mode otherwise
        out["secret_file"] = str(path)
    return out


def build_serve_app(
    engine: Engine,
    config: LoopConfig,
    backend: AnnotationBackend | None = None,
    *,
    follow_up: bool = True,
    log: Any = None,
) -> Starlette:
    """The receiver for the configured backend, with the dashboard at ``GET /`` (behind ``[dashboard] token``;
    off, 403, on an address other machines reach when no token is set); ``follow_up`` runs sync's later
    steps when labels arrive."""
    from prefloop.loop.sync import json_logger, run_follow_up
    from prefloop.loop.sync_report import milestone

    log = log or json_logger()
    backend = backend or make_backend(config.backend.name, backend_settings(config))
    receiver = _receiver(config, backend)
    metrics = ServeMetrics()
    worker = None
    if follow_up:
        worker = FollowUpWorker(
            lambda: run_follow_up(engine, config, backend, log=log),
            config.serve.debounce_s,
            config.serve.max_delay_s,
            log,
            on_result=lambda result: metrics.follow_ups.labels(result).inc(),
        )

    def since_model() -> int:
        with session_scope(engine) as session:
            return int(milestone(session, config).since)

    return build_app(
        engine,
        [receiver],
        body_limit=config.serve.body_limit,
        worker=worker,
        metrics=metrics,
        labels_since_model=since_model,
        log=log,
        routes=guarded_routes(engine, config, config.serve.host, webhooks=metrics.webhook_summary),
    )


def dashboard_access(config: LoopConfig) -> str:
    """Who may read the dashboard at ``GET /`` of this server, in words (for the start-up log line)."""
    if config.dashboard.token:
        return f"at / with the token ({TOKEN_ENV})"
    if is_loopback(config.serve.host):
        return "at / (this machine only)"
    return f"off: {config.serve.host} is reachable from other machines and {TOKEN_ENV} is not set"


def run_serve(engine: Engine, config: LoopConfig, *, register: bool = False, log: Any = None) -> None:
    """Serve until SIGINT / SIGTERM (uvicorn), after registering the webhook when asked."""
    import uvicorn

    from prefloop.loop.sync import json_logger

    log = log or json_logger()
    backend = make_backend(config.backend.name, backend_settings(config))
    if register or config.serve.public_url:  # idempotent: an existing webhook is updated, not doubled
        log(register_webhooks(config, backend))
    app = build_serve_app(engine, config, backend, log=log)
    log(
        {
            "step": "serve",
            "host": config.serve.host,
            "port": config.serve.port,
            "backend": backend.name,
            "dashboard": dashboard_access(config),
        }
    )
    # keep-alive longer than a sender's pool keeps idle connections: a reused, server-closed one is a lost answer
    uvicorn.run(
        app,
        host=config.serve.host,
        port=config.serve.port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=75,
    )
