"""Screenshot of a prefloop pair in Label Studio's labeling UI -> docs/img/label_studio_task.png.

Starts a throwaway Label Studio with the test harness, pushes one pair through
``LabelStudioBackend``, logs the admin in (the web form, for a session cookie) and has
headless Chromium render the task, driven over the DevTools protocol on a pipe (stdlib
only: no websocket package, no Playwright browser download).

Needs Chromium:  apt-get update && apt-get install -y chromium   (or set CHROMIUM=/path/to/chrome)

    python scripts/screenshot_label_studio.py [--out docs/img/label_studio_task.png]
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefloop.backends import BackendSettings
from prefloop.backends.label_studio import LabelStudioBackend
from prefloop.types import TaskRequest, content_hash, pair_key
from tests.backends.harness_label_studio import LabelStudioServer, start_server

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "How do I keep fresh basil from wilting? I bought a big <b>bunch</b> yesterday."
ANSWERS = (
    "Trim the stems and stand the bunch in a glass of water on the counter, like cut flowers. "
    "Loosely cover the leaves with a plastic bag and change the water every day or two. "
    "Keep it out of the fridge: basil blackens below about 10 °C.",
    "Wrap it in a damp paper towel, put it in a zip bag and store it in the fridge. Use it within two days.",
)


class DevTools:
    """Chrome DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON)."""

    def __init__(self, chromium: str, profile: Path, size: tuple[int, int]) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        # Chromium expects the pipe on fds 3 and 4: move our ends there just before exec (via
        # fds >= 10 first, in case the originals are 3 or 4). os.pipe fds are close-on-exec and
        # dup2 copies are not, so with close_fds=False exactly these two reach the browser.
        def _fds() -> None:
            read_end = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [
                chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                "--hide-scrollbars",
                "about:blank",
            ],
            close_fds=False,
            preexec_fn=_fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._buffer = b""

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(raw))

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _login_cookies(server: LabelStudioServer) -> list[dict[str, Any]]:
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        page = browser.get("/user/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert csrf, "no CSRF field on the login page"
        answer = browser.post(
            "/user/login/",
            headers={"Referer": f"{server.url}/user/login/"},
            data={"csrfmiddlewaretoken": csrf.group(1), "email": server.admin.email, "password": server.admin.password},
        )
        if answer.status_code != 302:
            raise RuntimeError(f"logging in failed with HTTP {answer.status_code}")
        return [{"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": "/"} for c in browser.cookies.jar]


def _push_pair(server: LabelStudioServer) -> tuple[str, str]:
    backend = LabelStudioBackend(
        BackendSettings(
            project="prefloop demo", url=server.url, api_key=server.admin.token, dimensions=["helpful", "harmless"]
        )
    )
    project_id = backend.ensure_project()
    hashes = [content_hash(a) for a in ANSWERS]
    [task] = backend.push_tasks(
        [
            TaskRequest(
                pair_key=pair_key(content_hash(PROMPT), *hashes),
                prompt=PROMPT,
                response_a=ANSWERS[0],
                response_b=ANSWERS[1],
            )
        ]
    )
    return project_id, task.external_id


def screenshot(out: Path, chromium: str, wait_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="ls-screenshot-") as workdir:
        server = start_server(Path(workdir))
        tools = None
        try:
            project_id, task_id = _push_pair(server)
            tools = DevTools(chromium, Path(workdir) / "profile", (1400, 1100))
            tools.call("Storage.setCookies", cookies=_login_cookies(server))
            url = f"{server.url}/projects/{project_id}/data?tab=&task={task_id}"
            target = tools.call("Target.createTarget", url=url)["targetId"]
            session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            time.sleep(wait_s)  # the labeling UI is a React app that keeps loading after 'load'
            shot = tools.call("Page.captureScreenshot", session=session, format="png")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(base64.b64decode(shot["data"]))
            print(f"wrote {out} ({out.stat().st_size:,} bytes) from {url}")
        finally:
            if tools is not None:
                tools.close()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "label_studio_task.png")
    parser.add_argument("--wait", type=float, default=12.0, help="seconds to let the UI render")
    args = parser.parse_args()
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("Chromium not found: apt-get update && apt-get install -y chromium (or set CHROMIUM=...)")
    screenshot(args.out, chromium, args.wait)


if __name__ == "__main__":
    main()
