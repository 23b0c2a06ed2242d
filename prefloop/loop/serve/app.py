"""The ASGI app of ``prefloop serve`` (Starlette): webhooks in, labels to the store, nothing slow inline.

    POST /webhooks/label-studio   Label Studio's annotation events (shared-secret header)
    POST /webhooks/argilla        Argilla's response events (Standard Webhooks signature)
    GET  /healthz                 the store answers, the writer's queue
    GET  /metrics                 Prometheus text
    GET  /, /panel/{name}, /static/{file}   the dashboard (``routes``: ``prefloop serve`` passes them, behind
                                  the dashboard's own token; the webhooks never need it)

A delivery is checked (size, sender, JSON, event), turned into a pull's records by its backend
(``labels_from_event``), stored by the writer thread (``writer.py``: the poll's store path), and
answered 200 only after the commit. Answers: 401 not the sender, 413 too large, 400 not JSON or
not the event's shape, 202 an event that is not ours (counted, nothing stored), 503 the store
failed (the sender may retry; the next poll picks the labels up either way). No answer and no
log line carries a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from prefloop.backends.base import AnnotationBackend, BackendError, MalformedEvent, UnknownEvent
from prefloop.loop.serve.metrics import ServeMetrics
from prefloop.loop.serve.worker import FollowUpWorker
from prefloop.loop.serve.writer import Delivery, StoreWriter
from prefloop.store.labels import PullCounts

__all__ = ["SOURCES", "Receiver", "build_app"]

#: the route name of each backend that sends webhooks
SOURCES = {"label_studio": "label-studio", "argilla": "argilla"}


@dataclass
class Receiver:
    """One webhook source: its backend (project, parsing) and the check of who sent a delivery."""

    backend: AnnotationBackend
    check: Callable[[bytes, Mapping[str, str]], str | None]  # → the reason it is refused, or None
    labels_per_task: int = 1

    @property
    def source(self) -> str:
        return SOURCES[self.backend.name]


class _TooLarge(Exception):
    pass


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes (a declared length is checked first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(
    engine: Engine,
    receivers: list[Receiver],
    *,
    body_limit: int,
    worker: FollowUpWorker | None = None,
    metrics: ServeMetrics | None = None,
    labels_since_model: Callable[[], int] | None = None,
    log: Callable[[dict[str, Any]], None] | None = None,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The receiver for ``receivers`` (one per backend at most), storing into ``engine``; ``routes`` are
    served beside the webhooks, each with its own checks (the dashboard's)."""
    metrics = metrics or ServeMetrics()
    by_source = {r.source: r for r in receivers}
    by_backend = {r.backend.name: r.source for r in receivers}

    def stored(backend: str, counts: PullCounts) -> None:
        metrics.count_labels(by_backend.get(backend, backend), counts)
        if worker is not None and counts.changed:
            worker.notify()

    writer = StoreWriter(engine, on_stored=stored)

    def answer(source: str, status: int, reason: str, detail: str) -> JSONResponse:
        if status >= 400 or status == 202:
            metrics.rejected.labels(source, reason).inc()
        if log is not None and status >= 400:
            log({"step": "webhook", "source": source, "status": status, "reason": reason})
        return JSONResponse({"ok": status < 300, "reason": reason, "detail": detail}, status_code=status)

    async def webhook(request: Request) -> Response:
        source = request.path_params["source"]
        receiver = by_source.get(source)
        if receiver is None:
            served = ", ".join(f"/webhooks/{s}" for s in by_source) or "none"
            return JSONResponse(
                {"ok": False, "reason": "not_served", "detail": f"this receiver serves {served}"}, status_code=404
            )
        metrics.received.labels(source).inc()
        received = time.perf_counter()
        try:
            body = await _body(request, body_limit)
        except _TooLarge:
            return answer(source, 413, "too_large", f"the body is over the limit of {body_limit} bytes")
        except ClientDisconnect:  # the sender gave up mid-body: nothing stored, it delivers again
            return answer(source, 400, "disconnected", "the sender closed the connection before the body ended")
        refused = receiver.check(body, request.headers)
        if refused is not None:
            return answer(source, 401, refused, "the delivery is not from the configured sender")
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return answer(source, 400, "bad_json", f"the body is not JSON: {exc.msg if hasattr(exc, 'msg') else exc}")
        if not isinstance(payload, dict):
            return answer(source, 400, "bad_json", "the body is JSON but not an object")
        try:
            event = await run_in_threadpool(receiver.backend.labels_from_event, payload, datetime.now(UTC))
        except UnknownEvent as exc:
            return answer(source, 202, "unknown_event", str(exc))
        except MalformedEvent as exc:
            return answer(source, 400, "malformed", str(exc))
        except BackendError as exc:  # naming a new annotator needed the server, which did not answer
            return answer(source, 503, "backend_error", f"{type(exc).__name__}: deliver again later")
        project = receiver.backend.settings.project
        if event.project != project:
            return answer(source, 202, "other_project", f"the event is about {event.project!r}, not {project!r}")
        delivery = Delivery(receiver.backend.name, project, event.result, receiver.labels_per_task, received)
        try:
            counts = await asyncio.wrap_future(writer.submit(delivery))
        except Exception as exc:
            if log is not None:
                log({"step": "webhook", "source": source, "status": 503, "error": type(exc).__name__})
            return answer(source, 503, "store_error", "the store did not take the labels; deliver again later")
        metrics.count_stored(source, time.perf_counter() - received)
        return JSONResponse(
            {
                "ok": True,
                "action": event.action,
                "labels": len(event.result.labels),
                "deleted": len(event.result.deleted),
                "batch": {"new": counts.new, "edited": counts.edited, "deleted": counts.deleted},
            }
        )

    async def healthz(request: Request) -> Response:
        def store_ok() -> bool:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True

        try:
            ok = await run_in_threadpool(store_ok)
        except Exception as exc:
            return JSONResponse({"ok": False, "store": type(exc).__name__}, status_code=503)
        return JSONResponse({"ok": ok, "queued": writer.pending(), "sources": sorted(by_source)})

    async def prometheus(request: Request) -> Response:
        if labels_since_model is not None:
            with contextlib.suppress(Exception):  # a scrape never fails on the store; the gauge keeps its value
                metrics.since_model.set(await run_in_threadpool(labels_since_model))
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        writer.start()
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            writer.stop()
            if worker is not None:
                worker.stop()

    app = Starlette(
        routes=[
            Route("/webhooks/{source}", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            *routes,
        ],
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.writer = writer
    return app
