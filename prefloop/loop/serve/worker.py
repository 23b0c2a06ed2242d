"""The one worker that does the slow part after labels arrive: rescore, retrain at a milestone, top up.

Handlers only store; they ``notify`` this worker. It waits until no label has arrived for
``debounce_s`` (a burst of clicks is one run), but never longer than ``max_delay_s`` after the
first waiting label, then runs the follow-up (``sync``'s steps after a pull, under the same store
lock). One thread, so at most one run at a time; labels arriving during a run start another after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from prefloop.errors import LockHeld

__all__ = ["FollowUpWorker"]


class FollowUpWorker:
    """Debounced runs of ``follow_up``; ``log`` gets one JSON-able entry per run."""

    def __init__(
        self,
        follow_up: Callable[[], Any],
        debounce_s: float,
        max_delay_s: float,
        log: Callable[[dict[str, Any]], None],
        on_result: Callable[[str], None] | None = None,
    ) -> None:
        self.follow_up = follow_up
        self.debounce_s, self.max_delay_s = debounce_s, max_delay_s
        self.log = log
        self.on_result = on_result
        self._wake = threading.Condition()
        self._first: float | None = None  # when the oldest label waiting for a run arrived
        self._last: float | None = None
        self._stopping = False
        self.runs = 0
        self._thread = threading.Thread(target=self._loop, name="prefloop-serve-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=5)

    def notify(self) -> None:
        """New labels are stored: schedule a run."""
        now = time.monotonic()
        with self._wake:
            self._first = self._first if self._first is not None else now
            self._last = now
            self._wake.notify()

    def _due_in(self) -> float | None:
        if self._first is None or self._last is None:
            return None
        due = min(self._last + self.debounce_s, self._first + self.max_delay_s)
        return max(0.0, due - time.monotonic())

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopping:
                    wait = self._due_in()
                    if wait == 0.0:
                        break
                    self._wake.wait(timeout=wait)
                if self._stopping:
                    return
                self._first = self._last = None
            self._run_once()

    def _run_once(self) -> None:
        started = time.perf_counter()
        try:
            self.follow_up()
            result = "ok"
        except LockHeld:  # a poll holds the store lock: it does the same steps; try again after it
            result = "lock_held"
            self.notify()
        except Exception as exc:  # the receiver keeps receiving; the next labels (or sync) try again
            result = "error"
            self.log({"step": "follow_up", "error": type(exc).__name__, "message": str(exc)[:500]})
        self.runs += 1
        self.log({"step": "follow_up", "result": result, "seconds": round(time.perf_counter() - started, 3)})
        if self.on_result is not None:
            self.on_result(result)
