"""Faults between prefloop and a real Label Studio, injected by an HTTP proxy in front of it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.harness_label_studio import LabelStudioServer
from tests.loop.conftest import ls_world_for
from tests.loop.faultproxy import FaultProxy
from tests.loop.world import World

pytestmark = pytest.mark.server


@pytest.fixture
def proxy(label_studio_server: LabelStudioServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(label_studio_server.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def world(label_studio_server: LabelStudioServer, proxy: FaultProxy, tmp_path: Path, sqlite_url: str) -> World:
    return ls_world_for(label_studio_server, tmp_path, sqlite_url, url=proxy.url)


def _steps(proc: object) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]  # type: ignore[attr-defined]


def _labels(world: World) -> int:
    from sqlalchemy import func, select

    from prefloop.store.db import make_engine, session_scope
    from prefloop.store.models import Label

    engine = make_engine(world.db_url)
    with session_scope(engine) as session:
        count = session.scalar(select(func.count(Label.id))) or 0
    engine.dispose()
    return count


def test_5xx_timeouts_and_outage_give_bounded_retries_then_exit_3(world: World, proxy: FaultProxy) -> None:
    assert world.sync().returncode == 0
    world.annotate_pending()
    assert world.sync().returncode == 0  # labels pulled while the server is healthy
    pulled = _labels(world)
    assert pulled == 8

    proxy.set("error", status=503)
    started = time.monotonic()
    failed = world.sync()
    assert failed.returncode == 3, failed.stdout + failed.stderr
    error = _steps(failed)[-1]
    assert error["kind"] == "backend_unreachable" and world.backend.settings.api_key not in failed.stdout
    assert proxy.faults <= 3 * 3, "retries are bounded"
    assert time.monotonic() - started < 120

    proxy.set("timeout", hang_s=15)
    assert world.sync().returncode == 3, "a hanging server is a timeout, then exit 3"

    proxy.set("error", status=502, fail_after=2)  # healthy first, then fails mid-cycle
    mid = world.sync()
    assert mid.returncode == 3, mid.stdout + mid.stderr
    assert _labels(world) == pulled, "nothing already pulled is lost"

    proxy.set("slow", delay_s=0.3)
    world.annotate_pending()
    slow = world.sync()
    assert slow.returncode == 0, "slow answers are only slow"
    assert _labels(world) == 16

    proxy.stop()  # the server is down: connection refused
    down = world.sync()
    assert down.returncode == 3 and "backend_unreachable" in down.stdout
    assert _labels(world) == 16


def test_a_passing_503_is_retried_and_the_sync_succeeds(world: World, proxy: FaultProxy) -> None:
    proxy.set("error", status=503, max_faults=2)  # the world's retries=2: the third try of that call passes
    run = world.sync()
    assert run.returncode == 0, run.stdout + run.stderr
    assert proxy.faults == 2 and _steps(run)[-1]["step"] != "error"


def test_a_refused_key_is_not_retried_and_exits_2_with_what_to_do(world: World, proxy: FaultProxy) -> None:
    proxy.set("error", status=401)
    run = world.sync()
    assert run.returncode == 2, run.stdout + run.stderr
    error = _steps(run)[-1]
    assert error["step"] == "error" and error["kind"] == "backend_auth" and error["exit_code"] == 2
    assert "refused the API key" in error["message"] and "LABEL_STUDIO_API_KEY" in error["message"]
    assert proxy.faults == 1, "a refused key is not retried"
    assert "Traceback" not in run.stderr and world.backend.settings.api_key not in run.stdout + run.stderr
