"""``prefloop serve`` against a real Label Studio 1.23: annotations arrive by webhook, before any poll."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from prefloop.backends.label_studio import LabelStudioBackend
from prefloop.config import BackendSettings, LoopConfig, ServeSettings
from prefloop.loop.serve import build_serve_app, register_webhooks
from prefloop.store.db import session_scope
from prefloop.store.labels import get_cursor
from prefloop.store.models import Label, Task
from prefloop.types import PairRecord, PushedTask
from tests.backends.conformance import _requests, make_pairs
from tests.backends.harness_label_studio import LabelStudioServer
from tests.backends.test_label_studio import LabelStudioDriver
from tests.loop.serve_kit import Delivery, ServeThread, Tap, free_port, live_view, poll_store, seeded_store, wait_for

pytestmark = pytest.mark.server

SECRET = uuid.uuid4().hex


class World:
    """A fresh project with ``pushed`` of ``n_pairs`` pairs pushed, a store holding them all and the
    pushed tasks, the webhook registered at ``url``."""

    def __init__(self, server: LabelStudioServer, tmp_path: Path, url: str, n_pairs: int = 4, pushed: int = 4) -> None:
        self.server = server
        backend = BackendSettings(
            name="label_studio",
            project=f"prefloop-serve-{uuid.uuid4().hex[:10]}",
            url=server.url,
            api_key=server.admin.token,
            with_strength=True,
            with_rationale=True,
            retries=1,
            backoff_s=0.05,
        )
        self.config = LoopConfig(
            artifacts_dir=str(tmp_path / "artifacts"),
            backend=backend,
            serve=ServeSettings(public_url=url, ls_secret=SECRET, debounce_s=0.2, max_delay_s=1.0),
        )
        self.backend = LabelStudioBackend(backend)
        self.records: list[PairRecord] = make_pairs(n_pairs, tag=uuid.uuid4().hex[:6])
        self.backend.ensure_project()
        self.tasks: list[PushedTask] = self.backend.push_tasks(_requests(self.records[:pushed]))
        self.engine = seeded_store(tmp_path / "serve.db", self.backend, self.records, self.tasks)
        self.registered = register_webhooks(self.config, self.backend)


@pytest.fixture
def driver(label_studio_server: LabelStudioServer) -> LabelStudioDriver:
    return LabelStudioDriver(label_studio_server)


def _labels(engine: Engine, source_id: str) -> list[Label]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Label).where(Label.source_id == source_id).order_by(Label.id)).unique())


def test_an_annotation_reaches_the_store_by_webhook_before_any_poll_then_its_edit_and_deletion(
    label_studio_server: LabelStudioServer, driver: LabelStudioDriver, tmp_path: Path
) -> None:
    port = free_port()
    world = World(label_studio_server, tmp_path, f"http://127.0.0.1:{port}")
    again = register_webhooks(world.config, world.backend)  # idempotent: still one webhook
    hooks = world.backend._rest("GET", "/api/webhooks", params={"project": int(world.backend.ensure_project())})
    assert again == world.registered and [h["url"] for h in hooks] == [world.registered["url"]]
    app = build_serve_app(world.engine, world.config, world.backend, follow_up=False)
    with ServeThread(app, port=port):
        task = world.tasks[0]
        aid = driver.submit(task, 0, driver.result("tie", strength=2, rationale="same"))
        (label,) = wait_for(lambda: _labels(world.engine, aid), 60, "the annotation to arrive by webhook")
        with session_scope(world.engine) as session:
            assert get_cursor(session, "label_studio", world.config.backend.project) is None, "no poll ran"
        assert (label.choice, label.strength, label.rationale) == ("tie", 2.0, "same")
        assert label.annotator.external_id == str(label_studio_server.annotators[0].user_id)
        assert label.annotator.name == label_studio_server.annotators[0].email
        pulled = {lb.source_id: lb for lb in world.backend.pull_labels(None).labels}[aid]
        assert label.version == pulled.version, "the version a poll reads: a later poll finds it a duplicate"
        assert pulled.created_at is not None and label.source_created_at is not None
        assert label.source_created_at.replace(tzinfo=None) == pulled.created_at.replace(tzinfo=None)

        driver.edit(task, 0, aid, "b")
        wait_for(lambda: len(_labels(world.engine, aid)) == 2, 60, "the edit to arrive by webhook")
        old, new = _labels(world.engine, aid)
        assert not old.is_current and old.superseded_by_id == new.id
        assert new.choice == ("a" if task.swapped else "b")

        driver.delete(task, 0, aid)
        wait_for(lambda: _labels(world.engine, aid)[-1].deleted_at is not None, 60, "the deletion by webhook")
        other = driver.annotate(world.tasks[1], 1, "a", strength=3)
        wait_for(lambda: _labels(world.engine, other), 60, "a second annotator's annotation")
    polled = poll_store(tmp_path / "poll.db", world.backend, world.records, world.tasks)
    assert live_view(world.engine) == live_view(polled)


def test_redelivered_reordered_and_forged_events_leave_the_store_a_poll_builds(
    label_studio_server: LabelStudioServer, driver: LabelStudioDriver, tmp_path: Path
) -> None:
    """Label Studio's real deliveries, recorded at a tap, then sent twice and newest first."""
    with Tap() as tap:
        world = World(label_studio_server, tmp_path, tap.url)
        t0, t1, t2 = world.tasks[:3]
        first = driver.annotate(t0, 0, "a", strength=1)
        driver.edit(t0, 0, first, "b")
        second = driver.annotate(t1, 1, "b")
        driver.edit(t1, 1, second, "tie")
        driver.delete(t1, 1, second)
        driver.annotate(t2, 0, "tie")
        driver.skip(t2, 1)
        deliveries = wait_for(lambda: len(tap.deliveries) >= 7 and list(tap.deliveries), 60, "seven deliveries")
    assert {d.headers.get("x-prefloop-token") for d in deliveries} == {SECRET}
    app = build_serve_app(world.engine, world.config, world.backend, follow_up=False)
    with ServeThread(app) as serve:
        url = f"{serve.url}/webhooks/label-studio"
        forged = [Delivery(d.path, {**d.headers, "x-prefloop-token": "guess"}, d.body) for d in deliveries]
        assert set(tap.replay(url, forged)) == {401}
        assert live_view(world.engine) == set(), "nothing refused was stored"
        assert set(tap.replay(url, list(reversed(deliveries)) + deliveries)) == {200}
    polled = poll_store(tmp_path / "poll.db", world.backend, world.records, world.tasks)
    assert live_view(world.engine) == live_view(polled)
    assert len(live_view(polled)) == 3, "t0's edited annotation, t2's annotation and t2's skip"
    with session_scope(world.engine) as session:
        rows = session.execute(select(Label.source_id, Label.version)).all()
    assert len(rows) == len(set(rows)), "no version stored twice"


def test_serve_killed_mid_stream_then_sync_gives_the_store_a_pure_poll_builds(
    label_studio_server: LabelStudioServer, driver: LabelStudioDriver, tmp_path: Path
) -> None:
    """Label Studio does not retry a webhook: what it sent while serve was dead is lost to serve.
    The next sync finds it, and nothing twice."""
    port = free_port()
    world = World(label_studio_server, tmp_path, f"http://127.0.0.1:{port}")
    settings = world.config.backend
    toml = tmp_path / "prefloop.toml"
    toml.write_text(
        f'db = "sqlite:///{tmp_path}/serve.db"\nartifacts_dir = "{tmp_path}/artifacts"\n'
        f'[backend]\nname = "label_studio"\nproject = "{settings.project}"\nurl = "{settings.url}"\n'
        "with_strength = true\nwith_rationale = true\n"
        "[acquisition]\nqueue_size = 4\n[milestone]\nmin_labels = 1000\n"
        "[serve]\ndebounce_s = 0.2\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "PREFLOOP_CONFIG": str(toml),
        "LABEL_STUDIO_API_KEY": label_studio_server.admin.token,
        "PREFLOOP_SERVE_LS_SECRET": SECRET,
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "prefloop", "serve", "--port", str(port)],
        env=env,
        stdout=(tmp_path / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 120, "prefloop serve to answer /healthz")
        done = [driver.annotate(t, 0, "a", strength=2) for t in world.tasks[:2]]
        wait_for(lambda: all(_labels(world.engine, a) for a in done), 60, "the first labels by webhook")
        serve.send_signal(signal.SIGKILL)  # mid-stream: nothing flushed, nothing said
        serve.wait(timeout=30)
        driver.edit(world.tasks[0], 0, done[0], "b")
        driver.delete(world.tasks[1], 0, done[1])
        late = [driver.annotate(t, 1, "tie") for t in world.tasks[2:]]
        assert not any(_labels(world.engine, a) for a in late), "sent while serve was dead: lost to it"
    finally:
        if serve.poll() is None:
            serve.kill()
    synced = subprocess.run(
        [sys.executable, "-m", "prefloop", "sync"], env=env, capture_output=True, text=True, timeout=600
    )
    assert synced.returncode in (0, 5), synced.stdout + synced.stderr
    polled = poll_store(tmp_path / "poll.db", world.backend, world.records, world.tasks)
    assert live_view(world.engine) == live_view(polled)
    assert len(live_view(polled)) == 3, "the edited annotation and the two late ones; the deleted one gone"


def test_labels_by_webhook_start_the_worker_which_tops_the_queue_up_as_sync_would(
    label_studio_server: LabelStudioServer, driver: LabelStudioDriver, tmp_path: Path
) -> None:
    """No poll runs: two labels arrive by webhook, the debounced worker sees two pending tasks fewer
    than queue_size and pushes two more pairs, under the store lock sync uses."""
    port = free_port()
    world = World(label_studio_server, tmp_path, f"http://127.0.0.1:{port}", n_pairs=8, pushed=4)
    world.config.acquisition.queue_size = 4
    world.config.milestone.min_labels = 1000  # no model: the cold-start top-up
    app = build_serve_app(world.engine, world.config, world.backend, follow_up=True, log=lambda entry: None)
    with ServeThread(app, port=port) as serve:
        done = [driver.annotate(t, 0, "a") for t in world.tasks[:2]]
        wait_for(lambda: all(_labels(world.engine, a) for a in done), 60, "two labels by webhook")
        wait_for(lambda: len(world.backend.live_tasks()) == 6, 120, "the worker to push two more tasks")
        metrics = httpx.get(f"{serve.url}/metrics").text
    assert 'prefloop_serve_follow_ups_total{result="ok"}' in metrics
    with session_scope(world.engine) as session:
        assert get_cursor(session, "label_studio", world.config.backend.project) is None, "no poll ran"
        tasks = session.scalars(select(Task).where(Task.external_id != "")).all()
    assert len(tasks) == 6 and sum(t.status == "pending" for t in tasks) == 4
