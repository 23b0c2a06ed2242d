"""The one retry policy both backends use (``prefloop/backends/retry.py``): which failures are
retried, and the waits between tries. The waits are recorded, not timed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from prefloop.backends import BackendSettings
from prefloop.backends.retry import RetryPolicy, Transient, retry_after_s, transient_answer
from prefloop.config import backend_settings, load_config


def _failing(failures: list[Exception | None], result: str = "done") -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if failures:
            failure = failures.pop(0)
            assert failure is not None
            raise failure
        return result

    return calls, attempt


def test_transient_failures_are_retried_with_doubling_waits() -> None:
    waits: list[float] = []
    calls, attempt = _failing([Transient("HTTP 503"), Transient("ConnectError"), Transient("HTTP 504")])
    policy = RetryPolicy(attempts=4, backoff_s=0.5, max_backoff_s=30)
    assert policy.call(attempt, sleep=waits.append) == "done"
    assert len(calls) == 4 and waits == [0.5, 1.0, 2.0]


def test_gives_up_after_the_attempts_with_the_last_failure() -> None:
    waits: list[float] = []
    calls, attempt = _failing([Transient("HTTP 503")] * 5)
    with pytest.raises(Transient, match="HTTP 503"):
        RetryPolicy(attempts=3, backoff_s=1, max_backoff_s=1.5).call(attempt, sleep=waits.append)
    assert len(calls) == 3 and waits == [1.0, 1.5]  # the doubling is capped at max_backoff_s


def test_other_errors_are_not_retried() -> None:
    waits: list[float] = []
    calls, attempt = _failing([ValueError("a bug, or a 4xx")])
    with pytest.raises(ValueError):
        RetryPolicy(attempts=5).call(attempt, sleep=waits.append)
    assert len(calls) == 1 and waits == []


def test_retry_after_sets_the_wait_capped() -> None:
    waits: list[float] = []
    _, attempt = _failing([transient_answer(429, {"Retry-After": "7"}), transient_answer(503, {"Retry-After": "120"})])
    RetryPolicy(attempts=3, backoff_s=0.1, max_backoff_s=60).call(attempt, sleep=waits.append)
    assert waits == [7.0, 60.0]


@pytest.mark.parametrize(("status", "transient"), [(429, True), (502, True), (503, True), (504, True)])
def test_transient_statuses(status: int, transient: bool) -> None:
    assert (transient_answer(status, {}) is not None) is transient


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 409, 422, 500])
def test_final_statuses(status: int) -> None:
    assert transient_answer(status, {}) is None


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"Retry-After": "Thu, 01 Jan 2026 12:00:05 GMT"}, now=now) == 5.0
    assert retry_after_s({"Retry-After": "Thu, 01 Jan 2026 11:00:00 GMT"}, now=now) == 0.0  # in the past
    assert retry_after_s({"Retry-After": "soon"}) is None and retry_after_s({}) is None


def test_policy_comes_from_the_backend_settings_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFLOOP_CONFIG", raising=False)
    (tmp_path / "prefloop.toml").write_text("[backend]\nretries = 5\nbackoff_s = 0.2\nmax_backoff_s = 4.0\n")
    policy = RetryPolicy.from_settings(backend_settings(load_config()))
    assert policy == RetryPolicy(attempts=6, backoff_s=0.2, max_backoff_s=4.0)
    assert RetryPolicy.from_settings(BackendSettings(retries=0)).attempts == 1
