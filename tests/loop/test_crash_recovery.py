"""kill -9 of `prefloop sync` at every phase, against a real Label Studio: rerun loses and duplicates nothing."""

from __future__ import annotations

import pytest

from prefloop.faults import CHECKPOINTS
from tests.loop.world import World

pytestmark = pytest.mark.server


@pytest.mark.parametrize("point", CHECKPOINTS)
def test_label_studio_sync_killed_then_rerun(ls_world: World, point: str) -> None:
    first = ls_world.sync()
    assert first.returncode == 0, first.stdout + first.stderr
    assert ls_world.annotate_pending() == 8
    assert ls_world.sync_killed_at(point)  # pull -> train -> score -> push, killed at `point`
    rerun = ls_world.sync()
    assert rerun.returncode in (0, 5), rerun.stdout + rerun.stderr
    ls_world.annotate_pending()
    final = ls_world.sync()
    assert final.returncode == 0, final.stdout + final.stderr
    counts = ls_world.check_nothing_lost_or_duplicated()
    assert counts["server_labels"] == 16 and counts["tasks"] == 24
