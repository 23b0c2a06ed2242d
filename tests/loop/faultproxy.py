"""A small HTTP proxy in front of a real server that injects faults (5xx, timeouts, slowness, outages).

Tests point prefloop at the proxy; the proxy forwards to the real server unless told to
misbehave. Faults are injected at the HTTP level only: the server behind is real.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

__all__ = ["FaultProxy"]

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "content-encoding",
    "host",
}


class FaultProxy:
    """Modes: 'pass', 'error' (HTTP ``status`` with ``headers``), 'timeout' (hang ``hang_s``),
    'slow' (delay ``delay_s``), 'lose_reply' (forward, then close the connection unanswered:
    the server acted, the client never hears of it).

    ``fail_after`` lets that many requests through before the mode applies (a fault mid-pull);
    ``max_faults`` stops injecting after that many faults (a server that recovers); ``only``
    applies the mode only to requests whose path contains it.
    ``stop()`` closes the port: the server is down (connection refused).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = "pass"
        self.status = 503
        self.hang_s = 5.0
        self.delay_s = 0.3
        self.fail_after = 0
        self.max_faults: int | None = None
        self.only: str | None = None
        self.headers: dict[str, str] = {}
        self.requests = 0
        self.faults = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(base_url=self.upstream, timeout=120)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def set(self, mode: str, **options: Any) -> None:
        with self._lock:
            self.mode = mode
            self.requests = 0
            self.faults = 0
            self.fail_after, self.max_faults, self.only, self.headers = 0, None, None, {}
            for key, value in options.items():
                setattr(self, key, value)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests += 1
            mode = self.mode if self.requests > self.fail_after else "pass"
            if self.only is not None and self.only not in handler.path:
                mode = "pass"
            if self.max_faults is not None and self.faults >= self.max_faults:
                mode = "pass"
            if mode != "pass":
                self.faults += 1
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if mode == "error":
            payload = b'{"detail": "injected fault"}'
            handler.send_response(self.status)
            for key, value in self.headers.items():
                handler.send_header(key, value)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if mode == "timeout":
            time.sleep(self.hang_s)
            handler.close_connection = True
            return
        if mode == "slow":
            time.sleep(self.delay_s)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        answer = self._client.request(handler.command, handler.path, content=body, headers=headers)
        if mode == "lose_reply":
            handler.close_connection = True
            return
        content = answer.content
        handler.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in HOP_BY_HOP:
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(content)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()
