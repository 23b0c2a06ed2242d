"""What the ``prefloop serve`` tests share: the app on a real port, a tap that records real
deliveries, the store's live labels as a comparable set, and a store built by a pure poll."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Engine, select
from starlette.applications import Starlette

from prefloop.backends.base import AnnotationBackend
from prefloop.loop.record import record_labels
from prefloop.store.db import init_db, make_engine, session_scope
from prefloop.store.models import Annotator, Label, Pair
from prefloop.store.pairs import add_pairs
from prefloop.store.tasks import record_tasks
from prefloop.types import PairRecord, PushedTask

__all__ = ["Delivery", "ServeThread", "Tap", "free_port", "live_view", "poll_store", "wait_for"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeThread:
    """The receiver app under a real uvicorn on 127.0.0.1, in this process (its own thread)."""

    def __init__(self, app: Starlette, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServeThread:
        self.thread.start()
        wait_for(lambda: self.server.started, 30, "the receiver to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


class Tap:
    """An HTTP endpoint that records every delivery as sent (headers, raw body) and answers 200."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        tap = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                tap.deliveries.append(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Tap:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def replay(self, url: str, deliveries: list[Delivery]) -> list[int]:
        """Post recorded deliveries to ``url`` (the receiver), headers and bytes as the server sent them."""
        keep = ("content-type", "authorization", "x-prefloop-token", "webhook-id", "webhook-timestamp")
        statuses = []
        with httpx.Client(timeout=30) as client:
            for d in deliveries:
                headers = {k: v for k, v in d.headers.items() if k in keep or k == "webhook-signature"}
                statuses.append(client.post(url, content=d.body, headers=headers).status_code)
        return statuses


def wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``check`` until it is truthy; fail naming ``what`` after ``timeout_s`` (a deadline, not a timing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.05)


def live_view(engine: Engine) -> set[tuple[Any, ...]]:
    """Every live label as the facts a user reads: pair, who, what, how strong, when, which version."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(
                Pair.key,
                Annotator.external_id,
                Annotator.name,
                Label.source_id,
                Label.version,
                Label.choice,
                Label.strength,
                Label.dimension,
                Label.rationale,
                Label.source_created_at,
                Label.source_updated_at,
            )
            .join(Pair, Pair.id == Label.pair_id)
            .join(Annotator, Annotator.id == Label.annotator_id)
            .where(Label.live())
        ).all()
    return {tuple(row) for row in rows}


def seeded_store(path: Path, backend: AnnotationBackend, records: list[PairRecord], tasks: list[PushedTask]) -> Engine:
    """A fresh store holding ``records`` and the backend's ``tasks`` (what sync's push records)."""
    url = f"sqlite:///{path}"
    init_db(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        add_pairs(session, records, source="serve-test")
    with session_scope(engine) as session:
        record_tasks(session, backend.name, tasks)
    return engine


def poll_store(path: Path, backend: AnnotationBackend, records: list[PairRecord], tasks: list[PushedTask]) -> Engine:
    """The store a pure poll builds: the same pairs and tasks, then one full pull."""
    engine = seeded_store(path, backend, records, tasks)
    record_labels(engine, backend.name, backend.settings.project, backend.pull_labels(None), move_cursor=True)
    return engine
