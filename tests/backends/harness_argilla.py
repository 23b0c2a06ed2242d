"""A real argilla-server 2.8 for the test session (no Docker, no Elasticsearch).

* The server lives in its own virtual environment, cached outside the repository
  (``~/.cache/prefloop/servers/argilla``, or ``$PREFLOOP_ARGILLA_VENV``). It is created on
  first use; a marker file is written only after a successful install, so an
  interrupted install is redone next time.
* ``argilla_server_launcher.py`` runs under that venv's python: it registers a search
  engine that answers from the server's own SQLite database, migrates, creates the owner
  and the workspace, and serves the real FastAPI app on 127.0.0.1 at a free port.
* Redis (required by the server) is the machine's one at 127.0.0.1:6379, on its own db
  index (``$PREFLOOP_ARGILLA_REDIS_DB``, default 7), flushed before and after.
* Two annotator users are created through the SDK, as a lead would.
* The server's rq worker runs beside it on the webhook queue, so webhooks are delivered
  (``prefloop serve``'s tests); its log is ``worker.log`` in the home.

If the server cannot start, the fixture FAILS: a backend suite that silently skips
would hide exactly the breakage it exists to catch.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from filelock import FileLock

__all__ = ["Annotator", "ArgillaServer", "argilla_server", "ensure_server_venv", "start_argilla_server"]

SERVER_REQUIREMENTS = ["argilla-server==2.8.0", "argilla==2.8.0", "uvicorn"]
VENV = Path(os.environ.get("PREFLOOP_ARGILLA_VENV", Path.home() / ".cache" / "prefloop" / "servers" / "argilla"))
LAUNCHER = Path(__file__).with_name("argilla_server_launcher.py")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = int(os.environ.get("PREFLOOP_ARGILLA_REDIS_DB", "7"))
WORKSPACE = "prefloop"
START_TIMEOUT_S = float(os.environ.get("PREFLOOP_ARGILLA_START_TIMEOUT_S", "120"))  # a loaded machine needs more


@dataclass(frozen=True)
class Annotator:
    id: str
    username: str
    api_key: str = field(repr=False)


@dataclass
class ArgillaServer:
    url: str
    api_key: str = field(repr=False)
    password: str = field(repr=False)
    workspace: str
    home: Path
    process: subprocess.Popen[bytes]
    annotators: list[Annotator] = field(default_factory=list)
    start_s: float = 0.0
    worker: subprocess.Popen[bytes] | None = None  # the rq worker that delivers webhooks


def ensure_server_venv(venv: Path = VENV) -> Path:
    """The server venv's python; created (pip install) when missing. Idempotent, safe across processes."""
    python = venv / "bin" / "python"
    marker = venv / ".prefloop-installed"
    wanted = "\n".join(SERVER_REQUIREMENTS)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(venv) + ".lock", timeout=900):
        if marker.exists() and marker.read_text() == wanted and python.exists():
            return python
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *SERVER_REQUIREMENTS,
            ],
            check=True,
        )
        marker.write_text(wanted)  # only after pip succeeded
    return python


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flush_redis_db(db: int = REDIS_DB) -> None:
    """FLUSHDB on our own index only, in raw RESP (the test env need not have a redis client)."""
    with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=5) as sock:
        sock.sendall(f"*2\r\n$6\r\nSELECT\r\n${len(str(db))}\r\n{db}\r\n*1\r\n$7\r\nFLUSHDB\r\n".encode())
        answer = b""
        while answer.count(b"\r\n") < 2:
            chunk = sock.recv(1024)
            if not chunk:
                break
            answer += chunk
    if not answer.startswith(b"+OK"):
        raise RuntimeError(f"Redis at {REDIS_HOST}:{REDIS_PORT} did not flush db {db}: {answer!r}")


def _server_env(home: Path, api_key: str, password: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ARGILLA_", "PYTHON", "VIRTUAL_ENV")) and k not in ("HOST", "PORT")
    }
    env.update(
        {
            "ARGILLA_HOME_PATH": str(home),
            "ARGILLA_DATABASE_URL": f"sqlite+aiosqlite:///{home}/argilla.db",
            "ARGILLA_REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
            "ARGILLA_SEARCH_ENGINE": "prefloop-sql",
            "ARGILLA_ENABLE_TELEMETRY": "0",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "TMPDIR": str(home / "tmp"),  # each start unpacks the 14 MB UI here
            "PREFLOOP_ARGILLA_OWNER_KEY": api_key,
            "PREFLOOP_ARGILLA_OWNER_PASSWORD": password,
        }
    )
    return env


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def stop_argilla_server(server: ArgillaServer) -> None:
    """Stop the server's and the worker's process groups, then clear our Redis db index."""
    if server.worker is not None:
        _stop_group(server.worker)
    _stop_group(server.process)
    with contextlib.suppress(OSError):
        flush_redis_db()


def start_argilla_server(home: Path, n_annotators: int = 2) -> ArgillaServer:
    """Start a migrated, empty server with an owner and annotators; raise RuntimeError if it cannot."""
    python = ensure_server_venv()
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    flush_redis_db()
    api_key, password = f"owner.{secrets.token_hex(16)}", secrets.token_hex(12)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (home / "server.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(python), str(LAUNCHER), "--port", str(port), "--workspace", WORKSPACE],
        cwd=home,
        env=_server_env(home, api_key, password),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = ArgillaServer(url=url, api_key=api_key, password=password, workspace=WORKSPACE, home=home, process=proc)
    while True:
        if proc.poll() is not None:
            tail = (home / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"argilla-server exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/api/v1/version", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() - started > START_TIMEOUT_S:
            stop_argilla_server(server)
            raise RuntimeError(f"argilla-server did not answer within {START_TIMEOUT_S:.0f} s; see {home}/server.log")
        time.sleep(0.25)
    server.start_s = time.monotonic() - started
    # The webhook worker (after the server migrated the database); without it no webhook is sent.
    server.worker = subprocess.Popen(
        [str(python), str(LAUNCHER), "--worker"],
        cwd=home,
        env=_server_env(home, "", ""),
        stdout=(home / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        server.annotators = _create_annotators(server, n_annotators)
    except Exception:
        stop_argilla_server(server)
        raise
    return server


def _create_annotators(server: ArgillaServer, n: int) -> list[Annotator]:
    import argilla as rg

    client = rg.Argilla(api_url=server.url, api_key=server.api_key)
    workspace = client.workspaces(server.workspace)
    owner = httpx.Client(base_url=server.url, headers={"X-Argilla-Api-Key": server.api_key}, timeout=30)
    out = []
    for i in range(n):
        user = rg.User(
            username=f"annotator{i + 1}",
            password=secrets.token_urlsafe(12),
            role="annotator",
            first_name=f"Annotator {i + 1}",
            client=client,
        ).create()
        user.add_to_workspace(workspace)
        detail = owner.get(f"/api/v1/users/{user.id}").raise_for_status().json()
        out.append(Annotator(id=str(user.id), username=detail["username"], api_key=detail["api_key"]))
    owner.close()
    return out


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArgillaServer]:
    """A real argilla-server 2.8 with an owner, a workspace and two annotators, for the whole session."""
    try:
        server = start_argilla_server(tmp_path_factory.mktemp("argilla-home"))
    except Exception as exc:
        pytest.fail(f"could not start argilla-server for the Argilla tests: {exc}", pytrace=False)
    yield server
    stop_argilla_server(server)
