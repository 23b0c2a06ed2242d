"""Screenshot a pushed pair in the Argilla UI: docs/img/argilla_record.png.

    python scripts/screenshot_argilla.py [--out docs/img/argilla_record.png]

Starts the test harness's argilla-server, pushes one pair through ``ArgillaBackend``,
then drives headless Chromium (Debian package ``chromium``) over the Chrome DevTools
Protocol (pip ``websocket-client``). ``chromium --screenshot`` alone cannot sign in, so
the script gets a token from ``POST /api/v1/token`` and puts it where the UI's nuxt-auth
looks for it (``localStorage['auth._token.local']``) before opening the annotation page.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prefloop.backends.argilla import ArgillaBackend  # noqa: E402
from prefloop.backends.base import BackendSettings  # noqa: E402
from prefloop.types import TaskRequest, content_hash, pair_key  # noqa: E402
from tests.backends.harness_argilla import start_argilla_server, stop_argilla_server  # noqa: E402

PROMPT = "How do I keep fresh basil from wilting?"
RESPONSE_A = "Trim the stems and keep the bunch in a glass of water on the counter, like cut flowers."
RESPONSE_B = "Wrap it in a damp paper towel and keep it in the fridge; it will last about a week."


class DevTools:
    """The few CDP calls a screenshot needs."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self._ws = websocket.create_connection(ws_url, timeout=60)
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == msg_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        self._ws.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chromium(profile: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            "--window-size=1400,1000",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(120):
        try:
            pages = httpx.get(f"http://127.0.0.1:{port}/json", timeout=2).json()
            page = next(p for p in pages if p.get("type") == "page")
            return proc, str(page["webSocketDebuggerUrl"])
        except (httpx.HTTPError, StopIteration):
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("chromium did not open its DevTools port")


def _wait_for(tools: DevTools, expression: str, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if tools.evaluate(expression):
            return True
        time.sleep(0.5)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "argilla_record.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="argilla-shot-") as tmp:
        server = start_argilla_server(Path(tmp) / "server")
        try:
            backend = ArgillaBackend(
                BackendSettings(
                    project="basil-demo",
                    url=server.url,
                    api_key=server.api_key,
                    extra={"workspace": server.workspace},
                )
            )
            key = pair_key(content_hash(PROMPT), content_hash(RESPONSE_A), content_hash(RESPONSE_B))
            backend.push_tasks(
                [
                    TaskRequest(
                        pair_key=key,
                        prompt=PROMPT,
                        response_a=RESPONSE_A,
                        response_b=RESPONSE_B,
                        strategy="bald",
                        score=0.42,
                        model_version="rm-demo",
                    )
                ]
            )
            dataset_id = backend.ensure_project()
            token = (
                httpx.post(
                    f"{server.url}/api/v1/token",
                    data={"username": "owner", "password": server.password},
                    timeout=30,
                )
                .raise_for_status()
                .json()["access_token"]
            )

            browser, ws_url = _chromium(Path(tmp) / "profile")
            tools = DevTools(ws_url)
            try:
                tools.call("Page.enable")
                tools.call("Page.navigate", url=f"{server.url}/sign-in")
                _wait_for(tools, "document.readyState === 'complete'")
                tools.evaluate(
                    f"localStorage.setItem('auth.strategy', 'local');"
                    f"localStorage.setItem('auth._token.local', 'Bearer {token}');"
                )
                tools.call("Page.navigate", url=f"{server.url}/dataset/{dataset_id}/annotation-mode")
                shown = _wait_for(tools, f"document.body.innerText.includes({json.dumps(RESPONSE_B[:30])})")
                time.sleep(2)  # let fonts and the question panel settle
                png = base64.b64decode(tools.call("Page.captureScreenshot", format="png")["data"])
                if not shown:
                    print("warning: the pair's text did not appear; the screenshot shows what loaded")
            finally:
                tools.close()
                browser.terminate()
                browser.wait(timeout=10)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(png)
            print(f"wrote {args.out} ({len(png)} bytes)")
        finally:
            stop_argilla_server(server)


if __name__ == "__main__":
    main()
