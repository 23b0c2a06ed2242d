"""Fault-injection points for the crash tests (no effect unless PREFLOOP_PAUSE_AT is set)."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["CHECKPOINTS", "LOCK_WAITING", "checkpoint"]

#: where a sync can be stopped: labels fetched but not stored; training begun; weights saved but
#: the version not recorded; tasks planned but not pushed; tasks pushed but not confirmed. The crash
#: tests kill a sync at each one.
CHECKPOINTS = ("pull:fetched", "train:started", "train:saved", "push:planned", "push:sent")

#: not a phase of a sync but a marker for the concurrency test: the sync lock is held by another
#: sync and this one is about to wait for it (only reached when two syncs overlap).
LOCK_WAITING = "lock:waiting"


def checkpoint(name: str) -> None:
    """With PREFLOOP_PAUSE_AT=<name>: create PREFLOOP_PAUSE_FILE (holding the pid) and wait here,
    so a test can kill -9 the process at exactly this instant, or start a second sync while this
    one holds the lock. The wait ends when the file PREFLOOP_PAUSE_UNTIL exists (the test says
    when, no clock involved), or after PREFLOOP_PAUSE_SECONDS (default an hour; 0: only mark)."""
    if os.environ.get("PREFLOOP_PAUSE_AT") != name:
        return
    Path(os.environ.get("PREFLOOP_PAUSE_FILE", "prefloop.paused")).write_text(str(os.getpid()))
    deadline = time.monotonic() + float(os.environ.get("PREFLOOP_PAUSE_SECONDS", "3600"))
    until = os.environ.get("PREFLOOP_PAUSE_UNTIL")
    while time.monotonic() < deadline and not (until and Path(until).exists()):
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
