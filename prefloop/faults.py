"""Fault-injection points for the crash tests (no effect unless PREFLOOP_PAUSE_AT is set)."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["CHECKPOINTS", "checkpoint"]

#: where a sync can be stopped: labels fetched but not stored; training begun; weights saved but
#: the version not recorded; tasks planned but not pushed; tasks pushed but not confirmed.
CHECKPOINTS = ("pull:fetched", "train:started", "train:saved", "push:planned", "push:sent")


def checkpoint(name: str) -> None:
    """With PREFLOOP_PAUSE_AT=<name>: create PREFLOOP_PAUSE_FILE (holding the pid) and stop here,
    so a test can kill -9 the process at exactly this instant."""
    if os.environ.get("PREFLOOP_PAUSE_AT") != name:
        return
    Path(os.environ.get("PREFLOOP_PAUSE_FILE", "prefloop.paused")).write_text(str(os.getpid()))
    time.sleep(3600)
