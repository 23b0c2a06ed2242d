"""The dashboard at ``GET /`` of ``prefloop serve``: the page of the store it writes to, behind the dashboard's
own token, off (403) on an open address without one — while the webhooks keep their own checks and never need
the dashboard's token. The real app on a real port, over a real SQLite store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from prefloop.backends.label_studio import LabelStudioBackend
from prefloop.config import BackendSettings, DashboardSettings, LoopConfig, ServeSettings
from prefloop.data.ingest import ingest
from prefloop.loop.demo import generated_records
from prefloop.loop.serve import build_serve_app, dashboard_access
from prefloop.loop.status import status_report
from tests.loop.serve_kit import ServeThread

LS_SECRET = "ls-" + "s3cr3t" * 6
TOKEN = "dash-" + "t0ken" * 5
NOWHERE = "http://127.0.0.1:9"  # the discard port: these tests never reach an annotation server
DELETED = json.dumps({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 17}], "project": {"title": "proj"}})
WEBHOOK = "/webhooks/label-studio"


def _config(tmp_path: Path, host: str = "127.0.0.1", token: str | None = None) -> LoopConfig:
    backend = BackendSettings(name="label_studio", project="proj", url=NOWHERE, api_key="key", retries=0)
    return LoopConfig(
        artifacts_dir=str(tmp_path / "artifacts"),
        backend=backend,
        serve=ServeSettings(host=host, ls_secret=LS_SECRET),
        dashboard=DashboardSettings(token=token, refresh_s=0),
    )


@pytest.fixture
def store(sqlite_engine: Engine, tmp_path: Path) -> Engine:
    """A store holding 12 labelled held-out pairs, ingested from a file as a user would."""
    path = tmp_path / "held.jsonl"
    with path.open("w") as handle:
        for r in generated_records(12, seed=4):
            row = {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b}
            handle.write(json.dumps({**row, "label": r.label.value if r.label else None}) + "\n")
    ingest(sqlite_engine, str(path), split="test", progress=False)
    return sqlite_engine


def _serve(engine: Engine, config: LoopConfig) -> ServeThread:
    return ServeThread(build_serve_app(engine, config, LabelStudioBackend(config.backend), follow_up=False))


def _figure(html: str, key: str) -> str:
    match = re.search(rf'id="{key}">([^<]*)<', html)
    assert match, f"no #{key} on the page"
    return match.group(1)


def _webhook_ok(url: str) -> httpx.Response:
    return httpx.post(url + WEBHOOK, content=DELETED.encode(), headers={"x-prefloop-token": LS_SECRET}, timeout=30)


def test_serve_shows_the_page_of_its_store_and_its_own_webhook_counts(store: Engine, tmp_path: Path) -> None:
    config = _config(tmp_path)
    status = status_report(store, config)
    with _serve(store, config) as serve:
        page = httpx.get(serve.url + "/")
        assert page.status_code == 200 and "Content-Security-Policy" in page.headers
        assert int(_figure(page.text, "labels-total")) == sum(status["labels_by_backend"].values()) == 12
        assert "not served by" not in page.text
        assert "0 received, 0 stored, 0 not stored" in page.text
        audit = httpx.get(serve.url + "/panel/audit").text  # no model yet, so no audit: how to get one
        assert "Not recorded" in audit and "[milestone] audit_pairs" in audit
        assert httpx.get(serve.url + "/static/vega.min.js").status_code == 200
        assert httpx.get(serve.url + "/panel/nope").status_code == 404

        assert _webhook_ok(serve.url).status_code == 200
        assert httpx.post(serve.url + WEBHOOK, content=b"{", headers={"x-prefloop-token": LS_SECRET}).status_code == 400
        health = httpx.get(serve.url + "/panel/health").text
        assert "2 received, 1 stored, 1 not stored" in health
        assert re.search(r"last stored: <time>\d{4}-\d\d-\d\dT[^<]+</time>", health), "the stored one's time"
        assert httpx.post(serve.url + "/", content=b"x").status_code == 405, "the page takes no writes"
    assert dashboard_access(config) == "at / (this machine only)"


def test_a_dashboard_token_guards_the_page_but_not_the_webhooks(store: Engine, tmp_path: Path) -> None:
    config = _config(tmp_path, token=TOKEN)
    with _serve(store, config) as serve:
        for path in ("/", "/panel/queue", "/static/vega.min.js"):
            refused = httpx.get(serve.url + path)
            assert refused.status_code == 401 and "PREFLOOP_DASHBOARD_TOKEN" in refused.text
            assert TOKEN not in refused.text
        assert httpx.get(serve.url + "/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert httpx.get(serve.url + "/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        with httpx.Client() as client:
            first = client.get(serve.url + f"/panel/queue?token={TOKEN}")
            assert first.status_code == 303 and first.headers["location"] == "/panel/queue"
            assert client.get(serve.url + "/panel/audit").status_code == 200, "the cookie is enough after that"
        # the webhook answers to its own secret alone; the receiver's own routes need no dashboard token
        assert _webhook_ok(serve.url).status_code == 200
        assert httpx.post(serve.url + WEBHOOK, content=DELETED.encode()).status_code == 401
        assert httpx.get(serve.url + "/healthz").json()["ok"] is True
        assert "prefloop_serve_events_stored_total" in httpx.get(serve.url + "/metrics").text
    assert "PREFLOOP_DASHBOARD_TOKEN" in dashboard_access(config) and TOKEN not in dashboard_access(config)


def test_an_open_address_without_a_token_turns_the_page_off_not_the_webhooks(store: Engine, tmp_path: Path) -> None:
    config = _config(tmp_path, host="0.0.0.0")
    # the app is bound to 127.0.0.1 here; what counts is the address [serve] host names
    with _serve(store, config) as serve:
        for path in ("/", "/panel/health", "/static/vega.min.js"):
            refused = httpx.get(serve.url + path)
            assert refused.status_code == 403, path
            assert "PREFLOOP_DASHBOARD_TOKEN" in refused.text and "0.0.0.0" in refused.text
            assert "<html" not in refused.text
        assert _webhook_ok(serve.url).status_code == 200
        assert httpx.get(serve.url + "/healthz").status_code == 200
    assert dashboard_access(config).startswith("off:")
    with _serve(store, _config(tmp_path, host="0.0.0.0", token=TOKEN)) as serve:  # with a token: served
        answer = httpx.get(serve.url + "/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200 and int(_figure(answer.text, "labels-total")) == 12
