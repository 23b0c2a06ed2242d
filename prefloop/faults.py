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
    """With PREFLOOP_PAUSE_AT=<name>: create PREFLOOP_PAUSE_FILE (holding the pid) and wait here
    PREFLOOP_PAUSE_SECONDS (default an hour), so a test can kill -9 the process at exactly this
    instant, or start a second sync while this one holds the lock."""
    if os.environ.get("PREFLOOP_PAUSE_AT") != name:
        return
    Path(os.environ.get("PREFLOOP_PAUSE_FILE", "prefloop.paused")).write_text(str(os.getpid()))
    time.sleep(float(os.environ.get("PREFLOOP_PAUSE_SECONDS", "3600")))
