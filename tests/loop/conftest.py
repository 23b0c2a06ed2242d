"""Worlds for the loop tests: the simulator, and real Label Studio / Argilla servers."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from prefloop.types import PushedTask
from tests.backends.harness_argilla import ArgillaServer
from tests.backends.harness_label_studio import LabelStudioServer
from tests.backends.test_argilla import ArgillaDriver
from tests.backends.test_label_studio import LabelStudioDriver
from tests.demo_oracle import oracle_path
from tests.loop.world import World, make_world


@pytest.fixture
def simulated_world(tmp_path: Path, sqlite_url: str) -> World:
    return make_world(
        tmp_path,
        sqlite_url,
        {
            "name": "simulated",
            "project": "loop",
            "url": str(tmp_path / "sim"),
            "extra": {"oracle_path": str(oracle_path(tmp_path, 40))},
        },
    )


def ls_world_for(server: LabelStudioServer, tmp: Path, db_url: str, url: str | None = None) -> World:
    driver = LabelStudioDriver(server)

    def annotate(world: World, task: PushedTask) -> None:
        driver.annotate(task, len(world.annotated) % 2, "a" if len(world.annotated) % 3 else "b")

    section = {
        "name": "label_studio",
        "project": f"loop-{uuid.uuid4().hex[:8]}",
        "url": url or server.url,
        "api_key": server.admin.token,
        "retries": 2,
        "backoff_s": 0.1,
        "timeout_s": 10,
    }
    return make_world(tmp, db_url, section, annotate=annotate)


@pytest.fixture
def ls_world(label_studio_server: LabelStudioServer, tmp_path: Path, sqlite_url: str) -> World:
    return ls_world_for(label_studio_server, tmp_path, sqlite_url)


@pytest.fixture
def argilla_world(argilla_server: ArgillaServer, tmp_path: Path, sqlite_url: str) -> World:
    driver = ArgillaDriver(argilla_server)

    def annotate(world: World, task: PushedTask) -> None:
        driver.annotate(task, len(world.annotated) % 2, "a" if len(world.annotated) % 3 else "b")

    section = {
        "name": "argilla",
        "project": f"loop-{uuid.uuid4().hex[:8]}",
        "url": argilla_server.url,
        "api_key": argilla_server.api_key,
        "retries": 2,
        "backoff_s": 0.1,
        "timeout_s": 10,
        "extra": {"workspace": argilla_server.workspace},
    }
    return make_world(tmp_path, sqlite_url, section, annotate=annotate)
