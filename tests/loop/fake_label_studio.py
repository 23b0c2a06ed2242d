"""A tiny HTTP server that answers like a misbehaving Label Studio, to inject faults prefloop must survive.

Only the few endpoints ``sync`` reaches before it fails are served, with the JSON shapes Label
Studio 1.23 sends. Faults are the point: ``repeat`` makes a listing ignore its ``page`` parameter
and answer page 1 forever (``"projects"``: the project list, ``"tasks"``: the task list alone);
``endless`` makes the task list invent new tasks on every page without ever announcing a total
(only a deadline stops that); ``version_status`` answers ``/api/version`` with that HTTP status.
Everything prefloop does with the answers (its SDK, its store, its lock) is real.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeLabelStudio"]


class FakeLabelStudio:
    """Serves on 127.0.0.1 (``url``); counts the requests per path in ``hits``."""

    def __init__(
        self,
        project: str,
        repeat: str | None = None,
        endless: bool = False,
        version_status: int = 200,
        body_echo: str = "",
    ) -> None:
        self.project, self.repeat, self.endless = project, repeat, endless
        self.version_status = version_status
        self.body_echo = body_echo  # put in error answers: a server that repeats what it was sent
        self.hits: dict[str, int] = {}
        self.authorization: list[str] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                fake._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        path = path.rstrip("/")
        page = int(query.get("page", ["1"])[0])
        size = int(query.get("page_size", ["100"])[0])
        if path == "/api/version":
            if self.version_status != 200:
                return self.version_status, {"detail": f"internal error {self.body_echo}"}
            return 200, {"release": "1.23.2"}
        if path == "/api/current-user/whoami":
            return 200, {"id": 1, "email": "admin@fake.test", "username": "admin"}
        if path == "/api/projects":
            if self.repeat == "projects":  # page 1, and a "next" link, whatever page was asked for
                return 200, {
                    "count": 10_000,
                    "next": f"{self.url}/api/projects/?page=2",
                    "previous": None,
                    "results": [{"id": 1, "title": self.project}],
                }
            return 200, {"count": 1, "next": None, "previous": None, "results": [{"id": 1, "title": self.project}]}
        if path == "/api/users":
            return 200, [{"id": 1, "email": "admin@fake.test", "username": "admin"}]
        if path == "/api/tasks":
            first = 1 if self.repeat == "tasks" else (page - 1) * size + 1
            tasks = [
                {
                    "id": i,
                    "data": {"pair_key": f"fake-{i}", "swapped": False},
                    "annotations": [],
                    "updated_at": "2026-01-01T00:00:00.000000Z",
                }
                for i in range(first, first + size)
            ]
            return 200, ({"tasks": tasks} if self.endless else {"tasks": tasks, "total": 1_000_000})
        return 404, {"detail": "Not found."}

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        with self._lock:
            path = parts.path.rstrip("/")
            self.hits[path] = self.hits.get(path, 0) + 1
            self.authorization.append(handler.headers.get("Authorization", ""))
        status, body = self._answer(parts.path, parse_qs(parts.query))
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
