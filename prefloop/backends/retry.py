"""One retry policy for every backend: what is worth trying again, how long to wait, when to stop.

Transient, and retried: the server could not be reached or did not answer in time (httpx's
transport errors), or it answered 429 (too many requests), 502, 503 or 504 (a proxy or the
server is overloaded or restarting). A ``Retry-After`` header on such an answer sets the wait
(capped at ``max_backoff_s``); otherwise the wait doubles from ``backoff_s``. Everything else —
a 4xx the request caused, a 500 from a bug — fails at once: trying it again gives the same
answer and only delays the message that says what to fix.

The numbers come from the backend settings record (``[backend] retries``, ``backoff_s``,
``max_backoff_s``), so both backends behave the same and a user tunes them in one place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import tenacity

from prefloop.backends.paging import Deadline

__all__ = ["TRANSIENT_STATUS", "RetryPolicy", "Transient", "retry_after_s", "transient_answer"]

_T = TypeVar("_T")

#: HTTP statuses worth retrying: rate limited, bad gateway, unavailable, gateway timeout.
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})


class Transient(Exception):
    """A failure that may pass: no answer, or an answer in ``TRANSIENT_STATUS``."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


def retry_after_s(headers: Mapping[str, str] | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None without one."""
    value = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def transient_answer(status: int, headers: Mapping[str, str] | None) -> Transient | None:
    """The ``Transient`` an HTTP answer is, or None when it is final (success or a real error)."""
    if status not in TRANSIENT_STATUS:
        return None
    return Transient(f"HTTP {status}", retry_after_s(headers))


@dataclass(frozen=True)
class RetryPolicy:
    """How a backend retries a transient failure; ``attempts`` counts the first try."""

    attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> RetryPolicy:
        """From a ``BackendSettings`` (``retries`` retries after the first try)."""
        return cls(
            attempts=1 + max(0, int(settings.retries)),
            backoff_s=max(0.0, float(settings.backoff_s)),
            max_backoff_s=max(0.0, float(settings.max_backoff_s)),
        )

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait before try ``attempt + 1`` (``attempt`` ≥ 1 tries have failed)."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        retry_after = failure.retry_after if isinstance(failure, Transient) else None
        return self.delay(state.attempt_number, retry_after)

    def call(
        self,
        attempt: Callable[[], _T],
        attempts: int | None = None,
        sleep: Callable[[float], None] | None = None,
        deadline: Deadline | None = None,
    ) -> _T:
        """Run ``attempt`` until it returns, raises a non-``Transient`` error, or the tries run out
        (then the last ``Transient`` is raised: the caller turns it into its own message).
        With a ``deadline``, no try starts after it, nor a wait that would end past it.

        ``attempt`` raises ``Transient`` for what may pass; ``transport`` wraps an httpx call so
        its transport errors are that.
        """
        stop: Any = tenacity.stop_after_attempt(max(1, attempts or self.attempts))
        if deadline is not None:
            late = deadline

            def past_deadline(state: tenacity.RetryCallState) -> bool:
                return late.passed() or self._wait(state) >= late.remaining()

            stop = stop | past_deadline
        retrying = tenacity.Retrying(
            stop=stop,
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(Transient),
            reraise=True,
            sleep=sleep if sleep is not None else time.sleep,
        )
        return retrying(attempt)


def transport(send: Callable[[], httpx.Response]) -> httpx.Response:
    """``send()``, with httpx's transport errors (refused, reset, timed out) as ``Transient``
    and a transient status as ``Transient`` too; any other answer is returned as it is."""
    try:
        response = send()
    except httpx.TransportError as exc:
        raise Transient(type(exc).__name__) from exc
    failure = transient_answer(response.status_code, response.headers)
    if failure is not None:
        raise failure
    return response
