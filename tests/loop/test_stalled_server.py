"""``sync`` always ends: a server that repeats a page, pages forever or fails its health check.

The server is ``FakeLabelStudio`` (faults at the HTTP level); the CLI, the SDK, the store and
its lock are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from tests.clirun import clean_env, prefloop
from tests.loop.fake_label_studio import FakeLabelStudio

KEY = "fake-legacy-token-5f0c"


def _setup(tmp_path: Path, url: str, **backend: object) -> None:
    lines = ["[backend]", 'name = "label_studio"', 'project = "stalled"', f'url = "{url}"', "retries = 0"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in backend.items()]
    (tmp_path / "prefloop.toml").write_text("\n".join(lines) + "\n")
    prefloop(tmp_path, "--db", "store.db", "init", check=True)


def _error(stdout: str) -> dict:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")][-1]


def _lock_is_free(tmp_path: Path) -> bool:
    lock = FileLock(str(tmp_path / "store.db.sync.lock"))
    try:
        lock.acquire(timeout=0)
    except TimeoutError:
        return False
    lock.release()
    return True


@pytest.fixture
def server_factory() -> Iterator[list[FakeLabelStudio]]:
    started: list[FakeLabelStudio] = []
    yield started
    for server in started:
        server.stop()


def _serve(started: list[FakeLabelStudio], **options: object) -> FakeLabelStudio:
    server = FakeLabelStudio("stalled", **options)  # type: ignore[arg-type]
    started.append(server)
    return server


@pytest.mark.parametrize("listing", ["projects", "tasks"])
def test_sync_against_a_server_repeating_page_1_stops_with_exit_3_and_frees_the_lock(
    tmp_path: Path, server_factory: list[FakeLabelStudio], listing: str
) -> None:
    server = _serve(server_factory, repeat=listing)
    _setup(tmp_path, server.url, batch_size=2)
    run = prefloop(tmp_path, "--db", "store.db", "sync", env=clean_env(LABEL_STUDIO_API_KEY=KEY))
    assert run.returncode == 3, run.stdout + run.stderr
    error = _error(run.stdout)
    assert error["kind"] == "backend_unreachable" and error["type"] == "BackendStalled"
    path = "/api/projects" if listing == "projects" else "/api/tasks"
    assert f"GET {path} page 2 repeats page 1" in error["message"], error["message"]
    assert "ignores the page parameter" in error["message"]
    served = server.hits.get(path, 0)
    assert served == 2, f"the guard stops at the first repeated page, not after {served} requests"
    assert _lock_is_free(tmp_path), "the lock is released when the sync stops"


def test_a_listing_that_never_ends_stops_at_deadline_s_with_exit_3(
    tmp_path: Path, server_factory: list[FakeLabelStudio]
) -> None:
    server = _serve(server_factory, endless=True)  # new tasks on every page, no total announced
    _setup(tmp_path, server.url, batch_size=2, deadline_s=1.5)
    run = prefloop(tmp_path, "--db", "store.db", "sync", env=clean_env(LABEL_STUDIO_API_KEY=KEY))
    assert run.returncode == 3, run.stdout + run.stderr
    message = _error(run.stdout)["message"]
    assert "past [backend] deadline_s = 1.5" in message and "PREFLOOP_BACKEND_DEADLINE_S" in message, message
    assert server.hits["/api/tasks"] > 2, "it was paging (distinct pages) until the deadline"
    assert _lock_is_free(tmp_path)


def test_http_500_at_the_health_check_exits_1_with_the_servers_answer(
    tmp_path: Path, server_factory: list[FakeLabelStudio]
) -> None:
    server = _serve(server_factory, version_status=500)
    _setup(tmp_path, server.url)
    run = prefloop(tmp_path, "--db", "store.db", "sync", env=clean_env(LABEL_STUDIO_API_KEY=KEY))
    assert run.returncode == 1, run.stdout + run.stderr
    error = _error(run.stdout)
    assert error["kind"] == "backend" and error["exit_code"] == 1
    assert "answered HTTP 500" in error["message"] and "internal error" in error["message"], error["message"]
    assert server.hits["/api/version"] == 1, "a 500 is not retried"
