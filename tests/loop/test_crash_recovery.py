"""kill -9 of `prefloop sync` at every phase, against real Label Studio and Argilla: the rerun loses and
duplicates nothing."""

from __future__ import annotations

import pytest

from prefloop.faults import CHECKPOINTS
from tests.loop.world import World

pytestmark = pytest.mark.server


def _kill_and_rerun(world: World, point: str) -> None:
    first = world.sync()
    assert first.returncode == 0, first.stdout + first.stderr
    assert world.annotate_pending() == 8
    assert world.sync_killed_at(point)  # pull -> train -> score -> push, killed at `point`
    rerun = world.sync()
    assert rerun.returncode in (0, 5), rerun.stdout + rerun.stderr
    world.annotate_pending()
    final = world.sync()
    assert final.returncode == 0, final.stdout + final.stderr
    counts = world.check_nothing_lost_or_duplicated()
    assert counts["server_labels"] == 16 and counts["tasks"] == 24


@pytest.mark.parametrize("point", CHECKPOINTS)
def test_label_studio_sync_killed_then_rerun(ls_world: World, point: str) -> None:
    _kill_and_rerun(ls_world, point)


@pytest.mark.parametrize("point", ["pull:fetched", "train:saved", "push:sent"])
def test_argilla_sync_killed_then_rerun(argilla_world: World, point: str) -> None:
    _kill_and_rerun(argilla_world, point)
