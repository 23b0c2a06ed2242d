"""``prefloop serve`` against a real argilla-server 2.8 and its rq worker: labels arrive by webhook."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from prefloop.backends.argilla import ArgillaBackend
from prefloop.config import BackendSettings, LoopConfig, ServeSettings
from prefloop.loop.serve import build_serve_app, register_webhooks
from prefloop.store.db import session_scope
from prefloop.store.labels import get_cursor
from prefloop.store.models import Label
from prefloop.types import PairRecord, PushedTask
from tests.backends.conformance import _requests, make_pairs
from tests.backends.harness_argilla import ArgillaServer
from tests.backends.test_argilla import ArgillaDriver
from tests.loop.serve_kit import Delivery, ServeThread, Tap, free_port, live_view, poll_store, seeded_store, wait_for

pytestmark = pytest.mark.server


def _config(server: ArgillaServer, tmp_path: Path, public_url: str, project: str) -> LoopConfig:
    backend = BackendSettings(
        name="argilla",
        project=project,
        url=server.url,
        api_key=server.api_key,
        extra={"workspace": server.workspace},
        retries=1,
        backoff_s=0.05,
    )
    return LoopConfig(
        db=f"sqlite:///{tmp_path}/serve.db",
        artifacts_dir=str(tmp_path / "artifacts"),
        backend=backend,
        serve=ServeSettings(public_url=public_url, debounce_s=0.2, max_delay_s=1.0),
    )


class World:
    """A fresh dataset with four pushed pairs, a store holding them, the webhook registered at ``port``."""

    def __init__(self, server: ArgillaServer, tmp_path: Path, port: int) -> None:
        self.server, self.port = server, port
        self.config = _config(server, tmp_path, f"http://127.0.0.1:{port}", f"pf-serve-{uuid.uuid4().hex[:10]}")
        self.backend = ArgillaBackend(self.config.backend)
        self.records: list[PairRecord] = make_pairs(4, tag=uuid.uuid4().hex[:6])
        self.backend.ensure_project()
        self.tasks: list[PushedTask] = self.backend.push_tasks(_requests(self.records))
        self.engine = seeded_store(tmp_path / "serve.db", self.backend, self.records, self.tasks)
        self.registered = register_webhooks(self.config, self.backend)

    def unregister(self) -> None:
        owner = httpx.Client(base_url=self.server.url, headers={"X-Argilla-Api-Key": self.server.api_key})
        for hook in owner.get("/api/v1/webhooks").json()["items"]:
            if hook["url"] == self.registered["url"]:
                owner.delete(f"/api/v1/webhooks/{hook['id']}")
        owner.close()
        self.backend.close()


@pytest.fixture
def world(argilla_server: ArgillaServer, tmp_path: Path) -> Iterator[World]:
    made = World(argilla_server, tmp_path, free_port())
    yield made
    made.unregister()


@pytest.fixture
def driver(argilla_server: ArgillaServer) -> Iterator[ArgillaDriver]:
    people = ArgillaDriver(argilla_server)
    yield people
    people.close()


def _labels(world: World, source_id: str) -> list[Label]:
    with session_scope(world.engine) as session:
        return list(session.scalars(select(Label).where(Label.source_id == source_id).order_by(Label.id)).unique())


def test_a_response_reaches_the_store_by_webhook_before_any_poll_then_its_edit_and_deletion(
    world: World, driver: ArgillaDriver, tmp_path: Path
) -> None:
    app = build_serve_app(world.engine, world.config, world.backend, follow_up=False)
    with ServeThread(app, port=world.port):
        task = world.tasks[0]
        rid = driver.annotate(task, 0, "tie", strength=2)
        (label,) = wait_for(lambda: _labels(world, rid), 60, "the response to arrive by webhook")
        with session_scope(world.engine) as session:
            assert get_cursor(session, "argilla", world.config.backend.project) is None, "no poll ran"
        assert label.choice == "tie" and label.strength == 2.0
        assert label.annotator.external_id == world.server.annotators[0].id
        assert label.annotator.name == world.server.annotators[0].username
        assert label.source_created_at is not None and label.source_updated_at is not None
        # the same facts a poll reads
        pulled = {lb.source_id: lb for lb in world.backend.pull_labels(None).labels}[rid]
        assert pulled.updated_at is not None and label.source_updated_at is not None
        assert label.version == pulled.version
        assert label.source_updated_at.replace(tzinfo=None) == pulled.updated_at.replace(tzinfo=None)  # SQLite: naive

        shown_b = "b"
        driver.edit(task, 0, rid, shown_b)
        wait_for(lambda: len(_labels(world, rid)) == 2, 60, "the edit to arrive by webhook")
        old, new = _labels(world, rid)
        assert not old.is_current and old.superseded_by_id == new.id and new.is_current
        assert new.choice == ("a" if task.swapped else "b")

        driver.delete(task, 0, rid)
        wait_for(lambda: _labels(world, rid)[-1].deleted_at is not None, 60, "the deletion to arrive by webhook")

        other = driver.annotate(world.tasks[1], 1, "a", strength=3)
        wait_for(lambda: _labels(world, other), 60, "a second annotator's response")
    polled = poll_store(tmp_path / "poll.db", world.backend, world.records, world.tasks)
    assert live_view(world.engine) == live_view(polled)


def test_redelivered_and_reordered_events_and_bad_signatures_leave_the_store_a_poll_builds(
    world: World, driver: ArgillaDriver, tmp_path: Path
) -> None:
    """The real deliveries, recorded at a tap, then sent to the receiver twice and newest first."""
    hook_url = world.registered["url"]
    with Tap() as tap:
        # point the one webhook at the tap while the annotators work
        owner = httpx.Client(base_url=world.server.url, headers={"X-Argilla-Api-Key": world.server.api_key})
        hook = next(h for h in owner.get("/api/v1/webhooks").json()["items"] if h["url"] == hook_url)
        owner.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": f"{tap.url}/webhooks/argilla"}).raise_for_status()
        t0, t1, t2 = world.tasks[:3]
        first = driver.annotate(t0, 0, "a", strength=1)
        driver.edit(t0, 0, first, "b")  # create then update
        second = driver.annotate(t1, 1, "b")
        driver.edit(t1, 1, second, "tie")
        driver.delete(t1, 1, second)  # create, update, delete
        driver.annotate(t2, 0, "tie", rationale="both fine")
        driver.skip(t2, 1)
        mine = world.config.backend.project

        def ours() -> list[Delivery]:
            return [d for d in tap.deliveries if mine.encode() in d.body]

        wait_for(lambda: len(ours()) >= 7, 90, "seven deliveries at the tap")
        owner.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": hook_url}).raise_for_status()
        owner.close()
        deliveries = ours()

    app = build_serve_app(world.engine, world.config, world.backend, follow_up=False)
    with ServeThread(app, port=world.port) as serve:
        url = f"{serve.url}/webhooks/argilla"
        # forged: the body changed after signing; a foreign secret; a stale timestamp under the right secret
        forged = Delivery(deliveries[0].path, deliveries[0].headers, deliveries[0].body + b" ")
        assert tap.replay(url, [forged]) == [401]
        foreign = Webhook(base64.b64encode(b"not the secret at all").decode())
        stale_at = datetime.now(UTC) - timedelta(minutes=6)
        secret = Webhook(Path(world.registered["secret_file"]).read_text())
        for signer, when in ((foreign, datetime.now(UTC)), (secret, stale_at)):
            body = deliveries[0].body
            headers = {
                "webhook-id": "msg_forged",
                "webhook-timestamp": str(int(when.timestamp())),
                "webhook-signature": signer.sign("msg_forged", when, body),
                "content-type": "application/json",
            }
            assert httpx.post(url, content=body, headers=headers).status_code == 401
        assert live_view(world.engine) == set(), "nothing refused was stored"

        reordered = list(reversed(deliveries)) + deliveries  # update before create, delete before update, twice
        assert set(tap.replay(url, reordered)) == {200}
        metrics = httpx.get(f"{serve.url}/metrics").text
    assert 'reason="bad_signature"' in metrics and 'reason="stale_timestamp"' in metrics
    polled = poll_store(tmp_path / "poll.db", world.backend, world.records, world.tasks)
    assert live_view(world.engine) == live_view(polled)
    assert len(live_view(polled)) == 3, "t0's edited response, t2's response and t2's discard"
    with session_scope(world.engine) as session:
        rows = session.execute(select(Label.source_id, Label.version)).all()
    assert len(rows) == len(set(rows)), "no version stored twice"
