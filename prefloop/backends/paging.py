"""Deadlines and page guards: every backend call ends, whatever the server answers.

A server (or a proxy in front of it) that ignores the page parameter answers page 1 again and
again; a pager that trusts it never ends, and ``sync`` would hold the store lock forever. So
each pager reads through a ``PageGuard``: a page whose items are those of an earlier page, more
pages than the count the server announced, or a pager still running past ``[backend]
deadline_s`` stops with ``BackendStalled`` (exit 3, the lock is released on the way out). The
same ``Deadline`` also bounds the retries of one call (``RetryPolicy.call``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from prefloop.errors import BackendStalled

__all__ = ["Deadline", "PageGuard"]


class Deadline:
    """A point in time (monotonic clock) a call must finish by."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = float(seconds)
        self._clock = clock
        self.started = clock()

    def elapsed(self) -> float:
        return self._clock() - self.started

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed())

    def passed(self) -> bool:
        return self.elapsed() >= self.seconds


class PageGuard:
    """Watches the pages of one listing and stops it when it cannot be making progress.

    ``server`` names the server in messages (its URL already masked), ``what`` the listing
    (``GET /api/tasks``). Call ``check`` with each page's item ids and the total the server
    announced (None when it announces none) before using the page.
    """

    def __init__(self, server: str, what: str, deadline_s: float, page_size: int | None = None) -> None:
        self.server, self.what = server, what
        self.deadline = Deadline(deadline_s)
        self.page_size = page_size
        self.pages = 0
        self.items = 0
        self.announced: int | None = None
        self._seen: dict[frozenset[str], int] = {}

    def _stop(self, problem: str, advice: str) -> BackendStalled:
        return BackendStalled(
            f"{self.server}: {self.what} {problem}; stopped after {self.pages} page(s), nothing from this call "
            f"was stored. {advice}"
        )

    def check(self, ids: Iterable[object], total: int | None = None) -> None:
        """Raise ``BackendStalled`` when this page repeats, overruns the announced count, or is late."""
        self.pages += 1
        page = frozenset(str(i) for i in ids)
        self.items += len(page)
        if total is not None:
            self.announced = max(total, self.announced or 0)
        if page and page in self._seen:
            raise self._stop(
                f"page {self.pages} repeats page {self._seen[page]} (the same {len(page)} item(s))",
                "The server, or a proxy in front of it, ignores the page parameter: check its version and the "
                "proxy between prefloop and it.",
            )
        self._seen.setdefault(page, self.pages)
        if self.announced is not None and self.page_size:
            most = max(1, math.ceil(self.announced / self.page_size))
            if self.pages > most:
                raise self._stop(
                    f"sent page {self.pages} although it announced {self.announced} item(s), "
                    f"{most} page(s) of {self.page_size}",
                    "The server, or a proxy in front of it, does not page as it says: check it.",
                )
        if self.deadline.passed():
            raise self._stop(
                f"was still paging after {self.deadline.elapsed():.0f} s (page {self.pages}), past [backend] "
                f"deadline_s = {self.deadline.seconds:g}",
                "Raise deadline_s (PREFLOOP_BACKEND_DEADLINE_S) if the project is that large, or check the server.",
            )
