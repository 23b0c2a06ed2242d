"""The Argilla backend against a real argilla-server 2.8 (see ``harness_argilla``)."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from prefloop.backends import BackendAuthError, BackendError, BackendSettings, BackendUnreachable, get_backend_class
from prefloop.backends.argilla import ArgillaBackend
from prefloop.config import backend_settings, load_config
from prefloop.errors import ExitCode
from prefloop.types import Choice, PushedTask, TaskRequest
from tests.backends.conformance import BackendConformance, _requests, make_pairs
from tests.backends.harness_argilla import ArgillaServer
from tests.loop.faultproxy import FaultProxy

pytestmark = pytest.mark.server


class ArgillaDriver:
    """The annotators, answering over REST with their own API keys, as the UI does."""

    def __init__(self, server: ArgillaServer) -> None:
        self.annotator_ids = [a.id for a in server.annotators]
        self._clients = [
            httpx.Client(base_url=server.url, headers={"X-Argilla-Api-Key": a.api_key}, timeout=30)
            for a in server.annotators
        ]

    def close(self) -> None:
        for client in self._clients:
            client.close()

    @staticmethod
    def _values(shown: str, strength: float | None = None, rationale: str | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {"preference": {"value": shown}}
        if strength is not None:
            values["strength"] = {"value": int(strength)}
        if rationale is not None:
            values["rationale"] = {"value": rationale}
        return values

    def respond(self, task: PushedTask, who: int, status: str, values: dict[str, Any] | None) -> str:
        body: dict[str, Any] = {"status": status}
        if values is not None:
            body["values"] = values
        answer = self._clients[who].post(f"/api/v1/records/{task.external_id}/responses", json=body)
        answer.raise_for_status()
        return str(answer.json()["id"])

    def annotate(
        self,
        task: PushedTask,
        who: int,
        shown: str,
        *,
        strength: float | None = None,
        rationale: str | None = None,
    ) -> str:
        return self.respond(task, who, "submitted", self._values(shown, strength, rationale))

    def edit(self, task: PushedTask, who: int, annotation_id: str, shown: str) -> None:
        self._clients[who].put(
            f"/api/v1/responses/{annotation_id}", json={"status": "submitted", "values": self._values(shown)}
        ).raise_for_status()

    def delete(self, task: PushedTask, who: int, annotation_id: str) -> None:
        self._clients[who].delete(f"/api/v1/responses/{annotation_id}").raise_for_status()

    def skip(self, task: PushedTask, who: int) -> str:
        return self.respond(task, who, "discarded", None)


def make_backend(server: ArgillaServer, **settings: Any) -> ArgillaBackend:
    base = dict(
        project=f"pf-{uuid.uuid4().hex[:12]}",
        url=server.url,
        api_key=server.api_key,
        extra={"workspace": server.workspace},
        retries=1,
        backoff_s=0.05,
    )
    base.update(settings)
    return ArgillaBackend(BackendSettings(**base))


@pytest.fixture
def backend(argilla_server: ArgillaServer) -> Iterator[ArgillaBackend]:
    instance = make_backend(argilla_server)
    yield instance
    instance.close()


@pytest.fixture
def driver(argilla_server: ArgillaServer) -> Iterator[ArgillaDriver]:
    instance = ArgillaDriver(argilla_server)
    yield instance
    instance.close()


class TestArgillaConformance(BackendConformance):
    """The shared contract, against the real server."""


# -- Argilla specifics ---------------------------------------------------------------


def _owner(server: ArgillaServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-Argilla-Api-Key": server.api_key}, timeout=30)


def _tasks(n: int, **extra: Any) -> list[TaskRequest]:
    return [TaskRequest(**{**t.__dict__, **extra}) for t in _requests(make_pairs(n, tag=uuid.uuid4().hex[:6]))]


def test_registry_finds_argilla() -> None:
    assert get_backend_class("argilla") is ArgillaBackend


def test_drafts_are_ignored(backend: ArgillaBackend, driver: ArgillaDriver) -> None:
    pushed = backend.push_tasks(_tasks(2))
    driver.respond(pushed[0], 0, "draft", {"preference": {"value": "a"}})
    submitted = driver.annotate(pushed[1], 0, "tie")
    result = backend.pull_labels()
    assert [(lb.pair_key, lb.source_id, lb.choice) for lb in result.labels] == [
        (pushed[1].pair_key, submitted, Choice.TIE)
    ]
    assert result.alive[pushed[0].pair_key] == frozenset()
    assert result.alive[pushed[1].pair_key] == frozenset({submitted})


def test_records_carry_metadata_and_presentation_order(backend: ArgillaBackend, argilla_server: ArgillaServer) -> None:
    tasks = _tasks(6, strategy="bald", score=0.25, model_version="rm-3")
    pushed = {t.pair_key: t for t in backend.push_tasks(tasks)}
    with _owner(argilla_server) as owner:
        items = owner.get(f"/api/v1/datasets/{backend.ensure_project()}/records", params={"limit": 100}).json()["items"]
        props = owner.get(f"/api/v1/me/datasets/{backend.ensure_project()}/metadata-properties").json()["items"]
    assert {p["name"] for p in props} >= {
        "pair_key",
        "strategy",
        "score",
        "model_version",
        "len_a",
        "len_b",
        "swapped",
    }
    by_key = {t.pair_key: t for t in tasks}
    assert len(items) == 6
    for item in items:
        task, meta = by_key[item["external_id"]], item["metadata"]
        assert meta["pair_key"] == task.pair_key and meta["strategy"] == "bald"
        assert meta["score"] == 0.25 and meta["model_version"] == "rm-3"
        swapped = pushed[task.pair_key].swapped
        assert meta["swapped"] == ("true" if swapped else "false")
        first = task.response_b if swapped else task.response_a
        assert item["fields"]["response_a"] == first and meta["len_a"] == len(first)
        assert item["fields"]["prompt"] == task.prompt  # HTML kept verbatim, shown as text


def test_suggestions_off_by_default(backend: ArgillaBackend, argilla_server: ArgillaServer) -> None:
    backend.push_tasks(_tasks(2, p_a=0.9, model_version="rm-3"))
    with _owner(argilla_server) as owner:
        items = owner.get(
            f"/api/v1/datasets/{backend.ensure_project()}/records", params={"include": "suggestions"}
        ).json()["items"]
    assert all(item["suggestions"] == [] for item in items)


def test_suggestions_on_show_the_model_guess(argilla_server: ArgillaServer) -> None:
    backend = make_backend(argilla_server, show_predictions=True)
    pushed = {t.pair_key: t for t in backend.push_tasks(_tasks(6, p_a=0.9, model_version="rm-3"))}
    with _owner(argilla_server) as owner:
        items = owner.get(
            f"/api/v1/datasets/{backend.ensure_project()}/records", params={"include": "suggestions"}
        ).json()["items"]
    for item in items:
        (suggestion,) = item["suggestions"]
        assert suggestion["agent"] == "rm-3" and suggestion["score"] == pytest.approx(0.9)
        # the model prefers canonical A; on screen that is B when the pair is shown swapped
        assert suggestion["value"] == ("b" if pushed[item["external_id"]].swapped else "a")


def test_task_distribution_follows_annotators_per_pair(argilla_server: ArgillaServer) -> None:
    backend = make_backend(argilla_server, annotators_per_pair=2)
    dataset_id = backend.ensure_project()
    with _owner(argilla_server) as owner:
        distribution = owner.get(f"/api/v1/datasets/{dataset_id}").json()["distribution"]
    assert distribution == {"strategy": "overlap", "min_submitted": 2}


def test_dimension_questions_give_their_own_labels(argilla_server: ArgillaServer, driver: ArgillaDriver) -> None:
    backend = make_backend(argilla_server, dimensions=["helpfulness"])
    (task,) = backend.push_tasks(_tasks(1))
    values = {"preference": {"value": "a"}, "dimension_helpfulness": {"value": "b"}}
    response_id = driver.respond(task, 1, "submitted", values)
    labels = {lb.source_id: lb for lb in backend.pull_labels().labels}
    assert set(labels) == {response_id, f"{response_id}:helpfulness"}
    assert labels[f"{response_id}:helpfulness"].dimension == "helpfulness"
    flip = {"a": "b", "b": "a"}
    assert labels[f"{response_id}:helpfulness"].choice.value == (flip["b"] if task.swapped else "b")
    assert labels[response_id].annotator.name == "annotator2"


def test_cursor_returns_only_recent_changes(backend: ArgillaBackend, driver: ArgillaDriver) -> None:
    # No pauses: the two labels land well inside one overlap window (a minute), which is the case
    # a clock-reading cursor got wrong under load; the cursor's seen-set makes the answer exact.
    backend.settings.overlap_s = 60.0
    pushed = backend.push_tasks(_tasks(2))
    first_id = driver.annotate(pushed[0], 0, "a")
    first = backend.pull_labels()
    assert [lb.pair_key for lb in first.labels] == [pushed[0].pair_key] and first.cursor
    assert backend.pull_labels(since=first.cursor).labels == []  # nothing new: nothing returned
    driver.annotate(pushed[1], 0, "b")
    second = backend.pull_labels(since=first.cursor)
    assert [lb.pair_key for lb in second.labels] == [pushed[1].pair_key]
    assert set(second.alive) == {t.pair_key for t in pushed}  # every record is still examined
    assert backend.pull_labels(since=second.cursor).labels == []
    driver.edit(pushed[0], 0, first_id, "b")  # an edit is a new version of the first label: it comes back once
    third = backend.pull_labels(since=second.cursor)
    assert [(lb.source_id, lb.pair_key) for lb in third.labels] == [(first_id, pushed[0].pair_key)]
    assert backend.pull_labels(since=third.cursor).labels == []


def test_cursor_written_by_an_older_version_still_reads(backend: ArgillaBackend, driver: ArgillaDriver) -> None:
    """A store synced before the seen-set holds a bare timestamp: it is a watermark with nothing seen."""
    pushed = backend.push_tasks(_tasks(1))
    driver.annotate(pushed[0], 0, "a")
    old_cursor = "2000-01-01T00:00:00+00:00"
    result = backend.pull_labels(since=old_cursor)
    assert [lb.pair_key for lb in result.labels] == [pushed[0].pair_key]
    assert result.cursor and result.cursor != old_cursor


def test_ensure_project_finds_existing_dataset_from_a_new_instance(argilla_server: ArgillaServer) -> None:
    first = make_backend(argilla_server)
    second = make_backend(argilla_server, project=first.settings.project)
    assert first.ensure_project() == second.ensure_project()


def test_withdraw_keeps_annotated_records(backend: ArgillaBackend, driver: ArgillaDriver) -> None:
    pushed = backend.push_tasks(_tasks(3))
    driver.skip(pushed[0], 0)
    assert backend.withdraw_tasks([t.pair_key for t in pushed]) == 2
    assert [t.pair_key for t in backend.live_tasks()] == [pushed[0].pair_key]


def test_credentials_are_masked(
    argilla_server: ArgillaServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = make_backend(argilla_server)
    backend.ensure_project()
    backend.push_tasks(_tasks(1))
    print(backend, backend.settings, repr(backend), str(backend))
    out = capsys.readouterr()
    assert argilla_server.api_key not in out.out + out.err + caplog.text
    assert "***" in repr(backend)


def test_api_key_from_environment(
    argilla_server: ArgillaServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The configuration reads the environment (the one place); the backend gets its settings."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFLOOP_CONFIG", raising=False)
    monkeypatch.delenv("PREFLOOP_BACKEND_URL", raising=False)
    monkeypatch.delenv("PREFLOOP_BACKEND_API_KEY", raising=False)
    monkeypatch.setenv("ARGILLA_API_URL", argilla_server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server.api_key)
    config = load_config(overrides={"backend.name": "argilla", "backend.project": "env"})
    config.backend.extra["workspace"] = argilla_server.workspace
    assert ArgillaBackend(backend_settings(config)).health().ok
    alone = ArgillaBackend(BackendSettings(url=argilla_server.url, project="env", retries=0))
    refused = alone.health()  # built without the settings, it does not read the environment itself
    assert not refused.ok and refused.refused


def test_wrong_key_is_unhealthy_not_an_exception(argilla_server: ArgillaServer) -> None:
    health = make_backend(argilla_server, api_key="wrong.key.123").health()
    assert not health.ok and "API key" in health.detail


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_raises_after_retries() -> None:
    backend = ArgillaBackend(
        BackendSettings(
            url=f"http://127.0.0.1:{_closed_port()}",
            api_key="secret.key.1",
            retries=2,
            backoff_s=0.05,
            timeout_s=2,
        )
    )
    health = backend.health()
    assert not health.ok and not health.refused and "secret.key.1" not in health.detail
    with pytest.raises(BackendUnreachable, match=r"after 3 attempt\(s\)") as info:
        backend.pull_labels()
    assert "secret.key.1" not in str(info.value)


@pytest.fixture
def proxied(argilla_server: ArgillaServer) -> Iterator[tuple[ArgillaBackend, FaultProxy]]:
    """A backend talking to the real server through a proxy that injects HTTP faults."""
    proxy = FaultProxy(argilla_server.url)
    backend = make_backend(argilla_server, url=proxy.url, retries=2, backoff_s=0.01)
    backend.ensure_project()
    yield backend, proxy
    backend.close()
    proxy.stop()


def test_transient_errors_are_retried_until_the_server_recovers(proxied: tuple[ArgillaBackend, FaultProxy]) -> None:
    backend, proxy = proxied
    proxy.set("error", status=503, max_faults=2)  # retries=2: the third try gets through
    assert backend.live_tasks() == [] and proxy.faults == 2
    proxy.set("error", status=429, headers={"Retry-After": "0"}, max_faults=1)
    assert backend.live_tasks() == [] and proxy.faults == 1
    proxy.set("error", status=502, max_faults=3)
    with pytest.raises(BackendUnreachable, match="HTTP 502"):
        backend.live_tasks()
    assert proxy.faults == 3, "three tries, then it gives up"


def test_refused_key_and_server_errors_are_not_retried(proxied: tuple[ArgillaBackend, FaultProxy]) -> None:
    backend, proxy = proxied
    proxy.set("error", status=401)
    with pytest.raises(BackendAuthError, match="refused the API key") as refused:
        backend.live_tasks()
    assert proxy.faults == 1 and "ARGILLA_API_KEY" in str(refused.value)
    assert refused.value.exit_code == ExitCode.CONFIG_ERROR
    health = backend.health()
    assert not health.ok and health.refused
    proxy.set("error", status=500)
    with pytest.raises(BackendError, match="500") as failed:
        backend.live_tasks()
    assert proxy.faults == 1 and not isinstance(failed.value, BackendUnreachable)
