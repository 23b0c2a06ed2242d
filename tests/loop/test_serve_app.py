"""The receiver's own answers, without an annotation server: who may post, how much, what is refused,
and that no secret reaches an answer or a log line. Deliveries are posted to the real app on a real port."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from standardwebhooks.webhooks import Webhook

from prefloop.backends.argilla import ArgillaBackend
from prefloop.backends.label_studio import LabelStudioBackend
from prefloop.config import BackendSettings, LoopConfig, ServeSettings, load_config
from prefloop.errors import ConfigError
from prefloop.loop.serve import build_serve_app, register_webhooks
from prefloop.store.db import session_scope
from prefloop.store.models import LabelTombstone
from tests.loop.serve_kit import ServeThread

LS_SECRET = "ls-" + "s3cr3t" * 6
OLD = "whsec_" + base64.b64encode(b"the secret before the rotation").decode()
NEW = "whsec_" + base64.b64encode(b"the secret after the rotation!!").decode()
NOWHERE = "http://127.0.0.1:9"  # the discard port: these tests never reach a server


def _config(name: str, tmp_path: Path, **serve: Any) -> LoopConfig:
    backend = BackendSettings(name=name, project="proj", url=NOWHERE, api_key="key", retries=0)
    return LoopConfig(
        artifacts_dir=str(tmp_path / "artifacts"), backend=backend, serve=ServeSettings(body_limit=4096, **serve)
    )


class Posted:
    def __init__(self, url: str, logged: list[dict[str, Any]]) -> None:
        self.url, self.logged = url, logged

    def post(self, path: str, body: bytes, **headers: str) -> httpx.Response:
        return httpx.post(self.url + path, content=body, headers=headers, timeout=30)


@pytest.fixture
def ls(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Posted]:
    config = _config("label_studio", tmp_path, ls_secret=LS_SECRET)
    logged: list[dict[str, Any]] = []
    app = build_serve_app(sqlite_engine, config, LabelStudioBackend(config.backend), follow_up=False, log=logged.append)
    with ServeThread(app) as serve:
        yield Posted(serve.url, logged)


@pytest.fixture
def argilla(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Posted]:
    config = _config("argilla", tmp_path, argilla_secrets=f"{OLD},{NEW}")
    logged: list[dict[str, Any]] = []
    app = build_serve_app(sqlite_engine, config, ArgillaBackend(config.backend), follow_up=False, log=logged.append)
    with ServeThread(app) as serve:
        yield Posted(serve.url, logged)


DELETED = json.dumps({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 17}], "project": {"title": "proj"}})


def test_label_studio_needs_the_shared_secret_in_either_header(ls: Posted, sqlite_engine: Engine) -> None:
    path, body = "/webhooks/label-studio", DELETED.encode()
    assert ls.post(path, body).status_code == 401
    assert ls.post(path, body, authorization="Bearer wrong").status_code == 401
    assert ls.post(path, body, authorization=f"Token {LS_SECRET}").status_code == 401
    assert ls.post(path, body, authorization=f"Bearer {LS_SECRET}").status_code == 200
    assert ls.post(path, body, **{"x-prefloop-token": LS_SECRET}).status_code == 200
    with session_scope(sqlite_engine) as session:  # a delete before its create: remembered, once
        assert session.scalars(select(LabelTombstone.source_id)).all() == ["17"]


def test_refusals_answer_with_their_reason_and_count_it(ls: Posted) -> None:
    path, auth = "/webhooks/label-studio", {"x-prefloop-token": LS_SECRET}
    big = b'{"action": "ANNOTATION_CREATED", "pad": "' + b"x" * 5000 + b'"}'
    assert ls.post(path, big, **auth).status_code == 413
    chunked = httpx.post(ls.url + path, content=iter([big[:3000], big[3000:]]), headers=auth)  # no length given
    assert chunked.status_code == 413
    assert ls.post(path, b"{not json", **auth).status_code == 400
    assert ls.post(path, b"[1, 2]", **auth).status_code == 400
    shapeless = json.dumps({"action": "ANNOTATION_CREATED", "project": {"title": "proj"}}).encode()
    assert ls.post(path, shapeless, **auth).status_code == 400
    assert ls.post(path, json.dumps({"action": "PROJECT_UPDATED"}).encode(), **auth).status_code == 202
    elsewhere = DELETED.replace('"proj"', '"another project"').encode()
    assert ls.post(path, elsewhere, **auth).status_code == 202
    assert ls.post("/webhooks/argilla", DELETED.encode(), **auth).status_code == 404, "not served here"
    metrics = httpx.get(ls.url + "/metrics").text
    for reason in ("too_large", "bad_json", "malformed", "unknown_event", "other_project"):
        assert f'prefloop_serve_events_rejected_total{{reason="{reason}",source="label-studio"}}' in metrics
    assert httpx.get(ls.url + "/healthz").json()["ok"] is True


def _signed(secret: str, body: bytes, when: datetime, msg_id: str = "msg_1") -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body),
        "content-type": "application/json",
    }


def test_argilla_signatures_old_and_new_secret_during_a_rotation_nothing_else(argilla: Posted) -> None:
    path = "/webhooks/argilla"
    body = json.dumps({"type": "dataset.created", "data": {}}).encode()  # signed, but not a label event
    now = datetime.now(UTC)
    assert argilla.post(path, body, **_signed(OLD, body, now)).status_code == 202
    assert argilla.post(path, body, **_signed(NEW, body, now)).status_code == 202
    other = "whsec_" + base64.b64encode(b"someone else's secret").decode()
    assert argilla.post(path, body, **_signed(other, body, now)).status_code == 401
    assert argilla.post(path, body + b" ", **_signed(NEW, body, now)).status_code == 401, "body changed after signing"
    for skew in (timedelta(minutes=-6), timedelta(minutes=6)):
        answer = argilla.post(path, body, **_signed(NEW, body, now + skew))
        assert (answer.status_code, answer.json()["reason"]) == (401, "stale_timestamp")
    assert argilla.post(path, body).status_code == 401, "no signature headers"


def test_no_secret_in_any_answer_metric_or_log_line(ls: Posted, argilla: Posted) -> None:
    sent = []
    for posted, path in ((ls, "/webhooks/label-studio"), (argilla, "/webhooks/argilla")):
        for headers in ({}, {"authorization": "Bearer nope"}, {"x-prefloop-token": LS_SECRET}):
            sent.append(posted.post(path, b"{", **headers).text)
        sent.append(httpx.get(posted.url + "/metrics").text)
        sent.append(json.dumps(posted.logged))
    text = "\n".join(sent)
    assert argilla.logged and ls.logged, "refusals are logged"
    for secret in (LS_SECRET, OLD, NEW, OLD.removeprefix("whsec_"), NEW.removeprefix("whsec_")):
        assert secret not in text


def test_serve_refuses_to_start_without_its_secrets_and_names_the_variable(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    for name, variable in (("label_studio", "PREFLOOP_SERVE_LS_SECRET"), ("argilla", "PREFLOOP_SERVE_ARGILLA_SECRETS")):
        config = _config(name, tmp_path)
        backend = LabelStudioBackend(config.backend) if name == "label_studio" else ArgillaBackend(config.backend)
        with pytest.raises(ConfigError, match=variable):
            build_serve_app(sqlite_engine, config, backend, follow_up=False)
    with pytest.raises(ConfigError, match="whsec_"):
        build_serve_app(sqlite_engine, _config("argilla", tmp_path, argilla_secrets="not-base64!"), follow_up=False)
    with pytest.raises(ConfigError, match="public_url"):
        register_webhooks(_config("argilla", tmp_path), ArgillaBackend(_config("argilla", tmp_path).backend))


def test_secrets_come_from_the_environment_only(tmp_path: Path) -> None:
    toml = tmp_path / "prefloop.toml"
    toml.write_text(f'[serve]\nls_secret = "{LS_SECRET}"\n')
    with pytest.raises(ConfigError, match="PREFLOOP_SERVE_LS_SECRET") as refused:
        load_config(str(toml), environ={})
    assert LS_SECRET not in str(refused.value)
    config = load_config(None, environ={**os.environ, "PREFLOOP_SERVE_ARGILLA_SECRETS": NEW})
    assert config.serve.argilla_secrets == NEW and NEW not in repr(config.serve)
