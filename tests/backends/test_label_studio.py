"""Label Studio: the shared conformance suite against a real server, plus its own behaviour."""

from __future__ import annotations

import socket
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from prefloop.backends import BackendAuthError, BackendError, BackendSettings, BackendUnreachable, make_backend
from prefloop.backends.label_studio import LabelStudioBackend
from prefloop.config import backend_settings, load_config
from prefloop.errors import ExitCode
from prefloop.types import Choice, PushedTask, TaskRequest
from tests.backends.conformance import BackendConformance, _requests, make_pairs
from tests.backends.harness_label_studio import LabelStudioServer
from tests.loop.faultproxy import FaultProxy

pytestmark = pytest.mark.server


class LabelStudioDriver:
    """Acts as the annotators: each one writes with their own token, as the UI would."""

    def __init__(self, server: LabelStudioServer) -> None:
        self.people = [server.client(account) for account in server.annotators]
        self.annotator_ids = [str(account.user_id) for account in server.annotators]

    @staticmethod
    def result(
        shown: str,
        strength: float | None = None,
        rationale: str | None = None,
        dimensions: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"from_name": "preference", "to_name": "prompt", "type": "choices", "value": {"choices": [shown]}}
        ]
        if strength is not None:
            out.append({"from_name": "strength", "to_name": "prompt", "type": "rating", "value": {"rating": strength}})
        if rationale is not None:
            out.append(
                {"from_name": "rationale", "to_name": "prompt", "type": "textarea", "value": {"text": [rationale]}}
            )
        for name, picked in (dimensions or {}).items():
            out.append(
                {"from_name": f"dim_{name}", "to_name": "prompt", "type": "choices", "value": {"choices": [picked]}}
            )
        return out

    def submit(self, task: PushedTask, who: int, result: list[dict[str, Any]], cancelled: bool = False) -> str:
        answer = self.people[who].post(
            f"/api/tasks/{task.external_id}/annotations/",
            json={"result": result, "was_cancelled": cancelled, "lead_time": 4.2},
        )
        answer.raise_for_status()
        return str(answer.json()["id"])

    def annotate(
        self, task: PushedTask, who: int, shown: str, *, strength: float | None = None, rationale: str | None = None
    ) -> str:
        return self.submit(task, who, self.result(shown, strength, rationale))

    def edit(self, task: PushedTask, who: int, annotation_id: str, shown: str) -> None:
        self.people[who].patch(
            f"/api/annotations/{annotation_id}/", json={"result": self.result(shown)}
        ).raise_for_status()

    def delete(self, task: PushedTask, who: int, annotation_id: str) -> None:
        self.people[who].delete(f"/api/annotations/{annotation_id}/").raise_for_status()

    def skip(self, task: PushedTask, who: int) -> str:
        return self.submit(task, who, [], cancelled=True)


def _settings(server: LabelStudioServer, **overrides: Any) -> BackendSettings:
    values: dict[str, Any] = {
        "project": f"prefloop-test-{uuid.uuid4().hex[:10]}",
        "url": server.url,
        "api_key": server.admin.token,
        "retries": 2,
        "backoff_s": 0.1,
        "timeout_s": 30,
    }
    values.update(overrides)
    return BackendSettings(**values)


@pytest.fixture
def ls_backend(label_studio_server: LabelStudioServer) -> LabelStudioBackend:
    backend = make_backend("label_studio", _settings(label_studio_server))
    assert isinstance(backend, LabelStudioBackend)
    return backend


@pytest.fixture
def ls_driver(label_studio_server: LabelStudioServer) -> LabelStudioDriver:
    return LabelStudioDriver(label_studio_server)


class TestLabelStudioConformance(BackendConformance):
    @pytest.fixture
    def backend(self, ls_backend: LabelStudioBackend) -> LabelStudioBackend:
        return ls_backend

    @pytest.fixture
    def driver(self, ls_driver: LabelStudioDriver) -> LabelStudioDriver:
        return ls_driver


# -- Label Studio specifics -------------------------------------------------------------


def _admin(server: LabelStudioServer) -> httpx.Client:
    return server.client(server.admin)


def _push(backend: LabelStudioBackend, n: int = 4, **fields: Any) -> list[PushedTask]:
    pairs = make_pairs(n, tag=uuid.uuid4().hex[:6])
    requests = [TaskRequest(**{**r.__dict__, **fields}) for r in _requests(pairs)]
    backend.ensure_project()
    return backend.push_tasks(requests)


def test_label_config_shows_text_and_offers_a_tie(
    ls_backend: LabelStudioBackend, label_studio_server: LabelStudioServer
) -> None:
    project = _admin(label_studio_server).get(f"/api/projects/{ls_backend.ensure_project()}").json()
    root = ET.fromstring(project["label_config"])
    assert {t.get("name") for t in root.iter("Text")} == {"prompt", "left", "right"}
    assert not list(root.iter("HyperText")), "responses must render as text, never as HTML"
    choices = {c.get("name"): [o.get("alias") for o in c.iter("Choice")] for c in root.iter("Choices")}
    assert choices == {"preference": ["a", "b", "tie"]}
    assert [r.get("name") for r in root.iter("Rating")] == ["strength"]
    assert [t.get("name") for t in root.iter("TextArea")] == ["rationale"]
    assert project["show_collab_predictions"] is False


def test_task_data_records_order_and_raw_html(
    ls_backend: LabelStudioBackend, label_studio_server: LabelStudioServer
) -> None:
    requests = _requests(make_pairs(8, tag="order"))
    ls_backend.ensure_project()
    pushed = {t.pair_key: t for t in ls_backend.push_tasks(requests)}
    admin = _admin(label_studio_server)
    for request in requests:
        data = admin.get(f"/api/tasks/{pushed[request.pair_key].external_id}").json()["data"]
        shown = (
            (request.response_b, request.response_a) if data["swapped"] else (request.response_a, request.response_b)
        )
        assert (data["left"], data["right"]) == shown
        assert data["pair_key"] == request.pair_key and data["swapped"] == pushed[request.pair_key].swapped
    assert any("<script>" in t for r in requests for t in (r.response_a, r.response_b))


def test_predictions_hidden_by_default(ls_backend: LabelStudioBackend, label_studio_server: LabelStudioServer) -> None:
    pushed = _push(ls_backend, p_a=0.9, model_version="rm-7")
    task = _admin(label_studio_server).get(f"/api/tasks/{pushed[0].external_id}").json()
    assert task["predictions"] == [] and task["total_predictions"] == 0


def test_predictions_carry_model_version_when_enabled(label_studio_server: LabelStudioServer) -> None:
    backend = LabelStudioBackend(_settings(label_studio_server, show_predictions=True))
    pushed = _push(backend, n=6, p_a=0.9, model_version="rm-7")
    admin = _admin(label_studio_server)
    assert admin.get(f"/api/projects/{backend.ensure_project()}").json()["show_collab_predictions"] is True
    for item in pushed:
        [prediction] = admin.get(f"/api/tasks/{item.external_id}").json()["predictions"]
        assert prediction["model_version"] == "rm-7"
        assert prediction["score"] == pytest.approx(0.9)
        # the model prefers canonical A, which sits on the right when the task is swapped
        assert prediction["result"][0]["value"]["choices"] == ["b" if item.swapped else "a"]


def test_dimensions_give_one_label_each(label_studio_server: LabelStudioServer, ls_driver: LabelStudioDriver) -> None:
    backend = LabelStudioBackend(_settings(label_studio_server, dimensions=["helpful", "harmless"]))
    pushed = _push(backend, n=6)
    config = ET.fromstring(
        _admin(label_studio_server).get(f"/api/projects/{backend.ensure_project()}").json()["label_config"]
    )
    assert {c.get("name") for c in config.iter("Choices")} == {"preference", "dim_helpful", "dim_harmless"}
    task = next(t for t in pushed if t.swapped)
    dims = {"helpful": "a", "harmless": "tie"}
    annotation = ls_driver.submit(task, 0, ls_driver.result("a", dimensions=dims))
    got = {(lb.dimension, lb.source_id): lb.choice for lb in backend.pull_labels().labels}
    assert got == {
        (None, annotation): Choice.B,
        ("helpful", f"{annotation}:helpful"): Choice.B,
        ("harmless", f"{annotation}:harmless"): Choice.TIE,
    }


def test_incremental_pull_reads_only_changed_tasks(
    label_studio_server: LabelStudioServer, ls_driver: LabelStudioDriver
) -> None:
    backend = LabelStudioBackend(_settings(label_studio_server, overlap_s=0.0))
    pushed = _push(backend, n=4)
    ls_driver.annotate(pushed[0], 0, "a")
    first = backend.pull_labels()
    assert len(first.alive) == 4 and len(first.labels) == 1 and first.cursor
    quiet = backend.pull_labels(since=first.cursor)
    assert quiet.labels == [] and quiet.alive == {} and quiet.cursor == first.cursor
    ls_driver.annotate(pushed[2], 1, "tie")
    later = backend.pull_labels(since=first.cursor)
    assert set(later.alive) == {pushed[2].pair_key} and [lb.choice for lb in later.labels] == [Choice.TIE]
    assert later.labels[0].annotator.name == label_studio_server.annotators[1].email
    assert later.cursor is not None and later.cursor > first.cursor


def test_withdraw_keeps_annotated_tasks(ls_backend: LabelStudioBackend, ls_driver: LabelStudioDriver) -> None:
    pushed = _push(ls_backend, n=3)
    ls_driver.annotate(pushed[0], 0, "a")
    ls_driver.skip(pushed[1], 1)
    assert ls_backend.withdraw_tasks([t.pair_key for t in pushed]) == 1
    assert {t.pair_key for t in ls_backend.live_tasks()} == {pushed[0].pair_key, pushed[1].pair_key}


def test_more_labels_raise_the_task_overlap(
    ls_backend: LabelStudioBackend, ls_driver: LabelStudioDriver, label_studio_server: LabelStudioServer
) -> None:
    task = _push(ls_backend, n=1)[0]
    admin = _admin(label_studio_server)
    ls_driver.annotate(task, 0, "a")
    assert admin.get(f"/api/tasks/{task.external_id}").json()["is_labeled"] is True
    assert ls_backend.request_more_labels([task.pair_key], 2) == 1
    assert ls_backend.request_more_labels([task.pair_key], 2) == 0, "asking again for the same total is a no-op"
    state = admin.get(f"/api/tasks/{task.external_id}").json()
    assert state["overlap"] == 2 and state["is_labeled"] is False
    ls_driver.annotate(task, 1, "b")
    assert admin.get(f"/api/tasks/{task.external_id}").json()["is_labeled"] is True
    assert len(ls_backend.pull_labels().labels) == 2


def test_personal_access_token_and_env_settings(
    label_studio_server: LabelStudioServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The environment is read by the configuration (one place); the backend gets its settings."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFLOOP_CONFIG", raising=False)
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio_server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio_server.personal_access_token())
    config = load_config(overrides={"backend.name": "label_studio", "backend.project": f"pat-{uuid.uuid4().hex[:8]}"})
    backend = LabelStudioBackend(backend_settings(config))
    health = backend.health()
    assert health.ok and health.version == "1.23.2"
    assert backend.ensure_project() == backend.ensure_project()
    assert backend.live_tasks() == []  # the plain REST path exchanges the personal token too
    alone = LabelStudioBackend(BackendSettings(url=label_studio_server.url))
    refused = alone.health()  # a backend built without the settings does not read the environment
    assert not refused.ok and refused.refused and "LABEL_STUDIO_API_KEY" in refused.detail


def test_credentials_never_shown(label_studio_server: LabelStudioServer) -> None:
    secret = "s3cr3t-token-that-must-not-leak"
    backend = LabelStudioBackend(_settings(label_studio_server, api_key=secret))
    for text in (repr(backend), str(backend), repr(backend.settings)):
        assert secret not in text and "***" in text
    with pytest.raises(BackendError) as refused:  # a wrong key is a clear error, not a retry loop
        backend.ensure_project()
    assert secret not in str(refused.value) and "API key" in str(refused.value)
    assert not backend.health().ok


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_retries_then_raises() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    settings = BackendSettings(project="nowhere", url=url, api_key="k-123-secret", retries=3, backoff_s=0.01)
    backend = LabelStudioBackend(settings)
    health = backend.health()
    assert not health.ok and not health.refused and url in health.detail
    with pytest.raises(BackendUnreachable) as unreachable:
        backend.pull_labels()
    message = str(unreachable.value)
    assert url in message and "4 tries" in message and "k-123-secret" not in message


def test_pages_through_tasks_in_batches(label_studio_server: LabelStudioServer, ls_driver: LabelStudioDriver) -> None:
    backend = LabelStudioBackend(_settings(label_studio_server, batch_size=5))
    pushed = _push(backend, n=10)  # two import batches; the pull reads exactly two full pages
    assert len(pushed) == 10 and len(backend.live_tasks()) == 10
    ls_driver.annotate(pushed[9], 0, "a")
    result = backend.pull_labels()
    assert len(result.alive) == 10 and len(result.labels) == 1


@pytest.fixture
def proxied(label_studio_server: LabelStudioServer) -> Iterator[tuple[LabelStudioBackend, FaultProxy]]:
    """A backend talking to the real server through a proxy that injects HTTP faults."""
    proxy = FaultProxy(label_studio_server.url)
    backend = LabelStudioBackend(_settings(label_studio_server, url=proxy.url, retries=2, backoff_s=0.01))
    backend.ensure_project()
    yield backend, proxy
    backend.close()
    proxy.stop()


def test_lost_import_reply_does_not_duplicate_tasks(proxied: tuple[LabelStudioBackend, FaultProxy]) -> None:
    backend, proxy = proxied
    proxy.set("lose_reply", only="/import", max_faults=1)  # the server imports; the reply never arrives
    pushed = backend.push_tasks(_requests(make_pairs(5, tag="lost")))
    assert proxy.faults == 1
    assert len(pushed) == 5 and len(backend.live_tasks()) == 5, "the retry found the tasks instead of importing again"


@pytest.mark.parametrize("status", [503, 502, 504])
def test_transient_errors_are_retried_until_the_server_recovers(
    proxied: tuple[LabelStudioBackend, FaultProxy], status: int
) -> None:
    backend, proxy = proxied
    proxy.set("error", status=status, max_faults=2)  # retries=2: the third try gets through
    assert backend.live_tasks() == [] and proxy.faults == 2
    proxy.set("error", status=status, max_faults=3)
    with pytest.raises(BackendUnreachable, match=f"HTTP {status}"):
        backend.live_tasks()
    assert proxy.faults == 3, "three tries, then it gives up"


def test_rate_limit_honours_retry_after(proxied: tuple[LabelStudioBackend, FaultProxy]) -> None:
    backend, proxy = proxied
    proxy.set("error", status=429, headers={"Retry-After": "0"}, max_faults=2)
    assert backend.live_tasks() == [] and proxy.faults == 2


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_is_not_retried(proxied: tuple[LabelStudioBackend, FaultProxy], status: int) -> None:
    backend, proxy = proxied
    proxy.set("error", status=status)
    with pytest.raises(BackendAuthError, match="refused the API key") as refused:
        backend.live_tasks()
    assert proxy.faults == 1, "a refused key fails at once"
    assert "LABEL_STUDIO_API_KEY" in str(refused.value) and refused.value.exit_code == ExitCode.CONFIG_ERROR


def test_a_server_error_is_not_retried(proxied: tuple[LabelStudioBackend, FaultProxy]) -> None:
    backend, proxy = proxied
    proxy.set("error", status=500)
    with pytest.raises(BackendError, match="HTTP 500") as failed:
        backend.live_tasks()
    assert proxy.faults == 1 and not isinstance(failed.value, BackendUnreachable)
