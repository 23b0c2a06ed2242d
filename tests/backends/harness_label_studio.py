"""A real Label Studio 1.23 server for tests, benchmarks and the screenshot script.

* The server lives in its own virtual environment (its pins never meet prefloop's):
  ``~/.cache/prefloop/servers/label-studio``, created and ``pip install``-ed on first use;
  a marker file written only after a successful install makes a half-install redo itself.
* The first start of an empty data dir runs migrations (35–60 s). That start happens once,
  into ``~/.cache/prefloop/label-studio-template/``: the admin (with a legacy token, which
  can only be enabled when the organization is created) and two annotators who sign up
  through the web form like real people, each with their own token. Every test session
  copies that template and starts in a few seconds.
* Bound to 127.0.0.1 on a port chosen here (a busy port would silently become port+1, so
  the harness checks it reached its own server by asking who the admin token belongs to).
* Stopped by terminating the server's whole process group.

``PREFLOOP_CACHE_DIR`` moves the cache (default ``~/.cache/prefloop``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from filelock import FileLock

__all__ = [
    "LS_VERSION",
    "LabelStudioServer",
    "ensure_server_venv",
    "ensure_template",
    "label_studio_server",
    "start_server",
]

LS_VERSION = "1.23.2"
CACHE = Path(os.environ.get("PREFLOOP_CACHE_DIR", Path.home() / ".cache" / "prefloop"))
VENV = CACHE / "servers" / "label-studio"
MARKER = VENV / f".prefloop-installed-label-studio-{LS_VERSION}"
TEMPLATE = CACHE / "label-studio-template"
ADMIN_EMAIL = "admin@prefloop.test"
ANNOTATORS = ("alice@prefloop.test", "bob@prefloop.test")
# Settings fall back to plain env vars: a stray one would change the server.
_STRIPPED_ENV = (
    "HOST",
    "PORT",
    "USERNAME",
    "PASSWORD",
    "DEBUG",
    "LABEL_STUDIO_URL",
    "LABEL_STUDIO_API_KEY",
    "LABEL_STUDIO_HOST",
    "LABEL_STUDIO_PORT",
    "LABEL_STUDIO_USERNAME",
    "LABEL_STUDIO_PASSWORD",
)


def _log(message: str) -> None:
    print(f"[label-studio harness] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Account:
    user_id: int
    email: str
    password: str = field(repr=False)
    token: str = field(repr=False)


@dataclass
class LabelStudioServer:
    """A running server: its URL, the admin and the annotator accounts."""

    url: str
    admin: Account
    annotators: list[Account]
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def personal_access_token(self) -> str:
        """A fresh personal access token (JWT refresh token) of the admin."""
        answer = httpx.post(f"{self.url}/api/token/", headers={"Authorization": f"Token {self.admin.token}"})
        answer.raise_for_status()
        return str(answer.json()["token"])

    def client(self, account: Account) -> httpx.Client:
        headers = {"Authorization": f"Token {account.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server's whole process group (it runs in its own session)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass


def ensure_server_venv() -> Path:
    """The server's own venv with label-studio installed; idempotent, safe across processes."""
    label_studio = VENV / "bin" / "label-studio"
    if MARKER.exists() and label_studio.exists():
        return label_studio
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(VENV.parent / "label-studio.lock")):
        if MARKER.exists() and label_studio.exists():
            return label_studio
        if not (VENV / "bin" / "python").exists():
            _log(f"creating the server venv {VENV}")
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        _log(f"pip install label-studio=={LS_VERSION} into {VENV} (about 80 s, 1 GB, first time only)")
        started = time.monotonic()
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, f"label-studio=={LS_VERSION}"], check=True, timeout=1800)
        MARKER.write_text(f"label-studio=={LS_VERSION} installed in {time.monotonic() - started:.0f} s\n")
    return label_studio


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
    env.update(
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "LATEST_VERSION_CHECK": "false",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "COLLECT_ANALYTICS": "false",
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            # webhooks to a receiver on this machine (prefloop serve's tests) need this off
            "SSRF_PROTECTION_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _launch(
    data_dir: Path, log_path: Path, admin: Account | None, first_start: bool, timeout_s: float
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server on a free loopback port and wait until it answers as our admin."""
    port = _free_port()
    cmd = [str(ensure_server_venv()), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)]
    if first_start and admin is not None:
        cmd += [
            "--username",
            admin.email,
            "--password",
            admin.password,
            "--user-token",
            admin.token,
            "--enable-legacy-api-token",
        ]
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            cmd,
            cwd=data_dir,
            env=_server_env(data_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Label Studio exited with {process.returncode}; log tail:\n{_tail(log_path)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        _stop(process)
        raise RuntimeError(
            f"Label Studio did not answer /health within {timeout_s:.0f} s; log tail:\n{_tail(log_path)}"
        )
    if admin is not None:  # the port may have been taken meanwhile and the server moved to port+1
        who = httpx.get(f"{url}/api/current-user/whoami", headers={"Authorization": f"Token {admin.token}"})
        if who.status_code != 200 or who.json().get("email") != admin.email:
            _stop(process)
            raise RuntimeError(f"{url} is not the server this harness started (port race); run again")
    return process, url


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _sign_up(url: str, email: str, password: str) -> Account:
    """Sign up through the web form (what an invited annotator does), then read the user's token."""
    with httpx.Client(base_url=url, timeout=60) as browser:
        page = browser.get("/user/signup/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if csrf is None:
            raise RuntimeError("the Label Studio signup page has no CSRF field; has the form changed?")
        answer = browser.post(
            "/user/signup/",
            headers={"Referer": f"{url}/user/signup/"},
            data={
                "csrfmiddlewaretoken": csrf.group(1),
                "email": email,
                "password": password,
                "how_find_us": "",
                "allow_newsletters": "",
            },
        )
        if answer.status_code != 302:
            raise RuntimeError(f"signing up {email} failed with HTTP {answer.status_code}")
        token = browser.get("/api/current-user/token").json()["token"]
        user_id = browser.get("/api/current-user/whoami").json()["id"]
    return Account(int(user_id), email, password, token)


def ensure_template() -> dict[str, object]:
    """The migrated template data dir with its accounts; built once (about a minute)."""
    state = TEMPLATE / "accounts.json"
    if state.exists():
        return dict(json.loads(state.read_text()))
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE / "label-studio-template.lock")):
        if state.exists():
            return dict(json.loads(state.read_text()))
        build = Path(tempfile.mkdtemp(prefix="label-studio-template.", dir=CACHE))
        (build / "data").mkdir()
        admin = Account(1, ADMIN_EMAIL, os.urandom(12).hex(), os.urandom(20).hex())
        _log(f"building the template data dir (first start runs migrations, 35-60 s) in {build}")
        started = time.monotonic()
        try:
            process, url = _launch(build / "data", build / "first-start.log", admin, True, timeout_s=600)
        except Exception:
            shutil.rmtree(build, ignore_errors=True)
            raise
        try:
            admin_id = httpx.get(
                f"{url}/api/current-user/whoami", headers={"Authorization": f"Token {admin.token}"}
            ).json()["id"]
            admin = Account(int(admin_id), admin.email, admin.password, admin.token)
            people = [_sign_up(url, email, os.urandom(12).hex()) for email in ANNOTATORS]
        finally:
            _stop(process)
        payload = {"label_studio": LS_VERSION, "admin": admin.__dict__, "annotators": [p.__dict__ for p in people]}
        (build / "accounts.json").write_text(json.dumps(payload, indent=1))
        shutil.rmtree(TEMPLATE, ignore_errors=True)
        build.rename(TEMPLATE)  # atomic: a half-built template never looks finished
        _log(f"template ready in {time.monotonic() - started:.0f} s")
        return payload


def start_server(workdir: Path, timeout_s: float = 180) -> LabelStudioServer:
    """Copy the template into ``workdir`` and start a server on it."""
    state = ensure_template()
    data_dir = workdir / "data"
    shutil.copytree(TEMPLATE / "data", data_dir)
    admin = Account(**state["admin"])  # type: ignore[arg-type]
    annotators = [Account(**a) for a in state["annotators"]]  # type: ignore[attr-defined]
    log_path = workdir / "label-studio.log"
    started = time.monotonic()
    process, url = _launch(data_dir, log_path, admin, False, timeout_s=timeout_s)
    _log(f"Label Studio {LS_VERSION} up at {url} in {time.monotonic() - started:.1f} s (log: {log_path})")
    return LabelStudioServer(url, admin, annotators, data_dir, log_path, process)


@pytest.fixture(scope="session")
def label_studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    """A real Label Studio for the whole test session. Fails (never skips) if it cannot start."""
    try:
        server = start_server(tmp_path_factory.mktemp("label-studio"))
    except Exception as exc:
        pytest.fail(f"could not start the Label Studio test server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
