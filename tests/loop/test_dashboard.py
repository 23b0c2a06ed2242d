"""``prefloop dashboard`` in a real browser (Debian's Chromium, driven by Playwright): the page of a store filled
by a short simulated loop shows the store's numbers — checked against ``status --json`` and ``annotators
--json`` — texts holding HTML show as text, and no request leaves 127.0.0.1. Also the snapshot file, the
token and the refusals. ``scripts/test.sh`` installs Chromium and Playwright (never ``playwright install``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from prefloop.backends.label_studio import LabelStudioBackend
from prefloop.config import BackendSettings, load_config
from prefloop.loop.dashboard import PANELS
from prefloop.loop.serve import build_serve_app
from prefloop.store.db import open_store, session_scope
from prefloop.store.models import Label, ModelVersion, Pair, Prediction, SyncCursor, Task
from prefloop.store.tasks import stale_tasks
from prefloop.store.versions import latest_model, model_audit
from tests.clirun import prefloop
from tests.loop.dashboard_kit import (
    AUDIT_PAIRS,
    HOSTILE_ANNOTATOR,
    IMG_TAG,
    SCRIPT_TAG,
    DashboardProcess,
    Loop,
    fill_loop,
)
from tests.loop.serve_kit import ServeThread

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.slow  # three syncs train two models


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    return fill_loop(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: scripts/test.sh installs it (apt-get install chromium)"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(loop: Loop) -> Iterator[DashboardProcess]:
    process = DashboardProcess(loop.folder)
    yield process
    process.stop()


def _open(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A page at ``url`` with every chart drawn, and every URL the browser requested for it."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    charts = page.locator("div.chart")
    for i in range(charts.count()):
        page.wait_for_selector(f"#{charts.nth(i).get_attribute('id')}[data-drawn='true'] svg")
    return page, requests


def _cell(page: Any, row: str, key: str) -> str:
    return page.locator(f"{row} td[data-key='{key}']").inner_text().strip()


def _number(text: str) -> float | None:
    return None if text == "–" else float(text)


def _stored_metrics(loop: Loop) -> dict[str, dict[str, Any]]:
    """Each model version's ``metrics`` as the store keeps them (its stored audit included)."""
    engine = open_store(load_config(str(loop.folder / "prefloop.toml")).db_url())
    with session_scope(engine) as session:
        out = {m.name: dict(m.metrics or {}) for m in session.scalars(select(ModelVersion))}
    engine.dispose()
    return out


def _interval(text: str) -> list[float] | None:
    return None if text == "–" else [float(x) for x in text.split(" to ")]


def _close(shown: Any, stored: Any) -> bool:
    """A shown number (4 places) or interval is the stored one, rounded."""
    if stored is None or shown is None:
        return shown is None and stored is None
    if isinstance(stored, list):
        return len(shown) == len(stored) and all(_close(a, b) for a, b in zip(shown, stored, strict=True))
    return abs(shown - stored) <= 5e-5


def test_every_panel_shows_the_stores_numbers(loop: Loop, server: DashboardProcess, browser: Any) -> None:
    page, requests = _open(browser, server.url)
    status, quality = loop.status, loop.annotators
    assert [s.get_attribute("id") for s in page.locator("section.panel").all()] == [f"panel-{p}" for p in PANELS]
    assert page.locator("#current-model").inner_text() == status["current_model"]

    # learning curve: one row per model version with the losses `status` reports
    versions = _stored_metrics(loop)
    rows = page.locator("#versions tbody tr")
    assert rows.count() == len(status["models"]) >= 2
    for model in status["models"]:
        row = f"#versions tr[data-model='{model['name']}']"
        assert _number(_cell(page, row, "labels")) == model["labels"]
        for key in ("val_loss", "train_loss"):
            expected = model["metrics"].get(key)
            assert _number(_cell(page, row, key)) == (None if expected is None else pytest.approx(expected, abs=5e-5))
        # held-out metrics: what `prefloop eval --json` measures with that version on the same held-out pairs
        evaluated = json.loads(prefloop(loop.folder, "eval", "--model", model["name"], "--json", check=True).stdout)
        assert _number(_cell(page, row, "heldout_pairs")) == evaluated["n"]
        assert _number(_cell(page, row, "accuracy")) == pytest.approx(evaluated["accuracy"], abs=5e-5)
        assert _number(_cell(page, row, "log_loss")) == pytest.approx(evaluated["log_loss"], abs=1e-3)
        assert _number(_cell(page, row, "ece")) == pytest.approx(evaluated["ece"], abs=1e-3)
        # reward-length r: training's validation split where it logged one, else the audit sync stored with it
        stored = versions[model["name"]]
        expected_r = stored.get("val_length_corr", stored["audit"]["length_correlation"]["r"])
        assert _number(_cell(page, row, "length_corr")) == pytest.approx(expected_r, abs=5e-5)
    assert page.locator("#reliability tbody tr").count() > 0

    # labels by annotator and backend
    assert int(page.locator("#labels-total").inner_text()) == sum(status["labels_by_backend"].values())
    shown = {
        (r.get_attribute("data-annotator"), r.get_attribute("data-backend")): int(r.locator("td.n").inner_text())
        for r in page.locator("#labels-by-annotator tbody tr").all()
    }
    assert shown == {(r["annotator"], r["backend"]): r["labels"] for r in status["labels_by_annotator"]}
    # (tables folded in a <details>: their text, not their rendering)
    per_time = sum(int(c) for c in page.locator("#labels-over-time td.n").all_text_contents())
    assert per_time == sum(status["labels_by_backend"].values())

    # agreement: alpha, kappa, Dawid-Skene reliability, flags, as `annotators --json`
    assert _number(page.locator("#krippendorff-alpha").inner_text()) == quality["krippendorff_alpha"]
    assert _number(page.locator("#fleiss-kappa").inner_text()) == quality["fleiss_kappa"]
    for person in quality["annotators"]:
        row = page.locator("#annotators tbody tr").filter(has_text=person["annotator"])
        assert row.count() == 1, person["annotator"]
        assert int(row.locator("td[data-key='labels']").inner_text()) == person["labels"]
        assert _number(row.locator("td[data-key='reliability']").inner_text()) == person["reliability"]
        assert _number(row.locator("td[data-key='agreement']").inner_text()) == person["agreement_with_consensus"]
        flags = row.locator("td[data-key='flags']").inner_text()
        assert all(reason in flags for reason in person["reasons"]) and (person["reasons"] or flags == "none")
    kappa_cells = page.locator("#chart-kappa-heatmap svg text").all_inner_texts()
    pairs = [(a, b) for a in quality["kappa_matrix"]["annotators"] for b in quality["kappa_matrix"]["annotators"]]
    assert len(pairs) > len(quality["kappa_matrix"]["annotators"]) and kappa_cells

    # the queue: pending, stale after the last retrain, milestone, histogram over the scored pool
    assert int(page.locator("#queue-pending").inner_text()) == sum(status["pending_tasks"].values())
    assert page.locator("#queue-milestone").inner_text() == status["milestone"]["progress"]
    config = load_config(str(loop.folder / "prefloop.toml"))
    engine = open_store(config.db_url())
    with session_scope(engine) as session:
        model = latest_model(session)
        assert model is not None
        stale = stale_tasks(session, config.backend.name, config.backend.project, model.id)
        labeled = select(Label.pair_id).where(Label.live())
        scored = session.scalar(
            select(func.count(Prediction.id))
            .join(Pair, Pair.id == Prediction.pair_id)
            .where(Prediction.model_version_id == model.id, Pair.split == "pool", Prediction.pair_id.not_in(labeled))
        )
        cursor = session.scalars(select(SyncCursor)).one()
        top = session.scalars(select(Task).where(Task.status == "pending").order_by(Task.score.desc())).first()
    engine.dispose()
    assert int(page.locator("#queue-stale").inner_text()) == len(stale)
    assert sum(int(c) for c in page.locator("#uncertainty td.n").all_text_contents()) == scored > 0
    assert top is not None and page.locator("#queue tbody tr").first.get_attribute("data-pair") is not None

    # health: the last pull is the sync cursor's time; the lock is free (no sync runs)
    assert cursor.updated_at.replace(tzinfo=None).isoformat(timespec="seconds") in _cell(page, "#health", "last_pull")
    assert _cell(page, "#health", "lock").startswith("free")
    assert "0" in _cell(page, "#health", "errors")
    assert _cell(page, "#health", "webhooks") == "not served by prefloop serve: see its /metrics"

    # every request went to the dashboard itself
    host = server.url.rstrip("/")
    assert requests and all(url.startswith(host + "/") for url in requests), requests
    page.close()


def test_the_audit_panel_shows_the_audit_stored_with_the_newest_version(
    loop: Loop, server: DashboardProcess, browser: Any
) -> None:
    engine = open_store(load_config(str(loop.folder / "prefloop.toml")).db_url())
    with session_scope(engine) as session:
        model = latest_model(session)
        assert model is not None
        name, created = model.name, model.created_at
        audit = model_audit(session, name)  # what `sync` stored: [milestone] audit_pairs after each retrain
    engine.dispose()
    assert audit is not None and audit["n_pairs"] == AUDIT_PAIRS
    page, requests = _open(browser, f"{server.url}panel/audit")
    assert page.locator("#audit-model").inner_text() == name
    assert int(page.locator("#audit-pairs").inner_text()) == audit["n_pairs"]
    assert page.locator("#audit-when").inner_text() == audit["audited_at"]
    made = created.replace(microsecond=0).isoformat()  # audited_at is stored to the second
    assert made <= audit["audited_at"].removesuffix("+00:00"), "audited after it was made"
    length = audit["length_correlation"]
    assert _close(_number(page.locator("#audit-length-r").inner_text()), length["r"])
    assert _close(_interval(page.locator("#audit-length-r-ci").inner_text()), length["ci"])
    assert page.locator("#audit-probes tbody tr").count() == len(audit["probes"]) > 0
    for probe in audit["probes"]:
        row = f"#audit-probes tr[data-probe='{probe['name']}']"
        for key in ("mean_shift", "flip_rate", "shift_beyond_length"):
            assert _close(_number(_cell(page, row, key)), probe[key]), (probe["name"], key)
        for key in ("ci", "flip_ci", "shift_beyond_length_ci"):
            assert _close(_interval(_cell(page, row, key)), probe[key]), (probe["name"], key)
    assert "Not recorded" not in page.locator("#audit-status").inner_text()
    assert all(url.startswith(server.url) for url in requests)
    page.close()


def test_the_page_at_the_root_of_prefloop_serve(loop: Loop, browser: Any) -> None:
    """``prefloop serve``'s app (uvicorn on 127.0.0.1) shows the same page, with its live webhook counts."""
    config = load_config(str(loop.folder / "prefloop.toml"))
    backend = BackendSettings(name="label_studio", project="dashboard", url="http://127.0.0.1:9", api_key="k")
    config = replace(config, backend=backend, serve=replace(config.serve, ls_secret="ls-secret-" + "x" * 20))
    engine = open_store(config.db_url())
    app = build_serve_app(engine, config, LabelStudioBackend(backend), follow_up=False)
    try:
        with ServeThread(app) as serve:
            page, requests = _open(browser, serve.url + "/")
            panels = [s.get_attribute("id") for s in page.locator("section.panel").all()]
            assert panels == [f"panel-{p}" for p in PANELS]
            assert page.locator("#current-model").inner_text() == loop.status["current_model"]
            assert int(page.locator("#labels-total").inner_text()) == sum(loop.status["labels_by_backend"].values())
            assert _cell(page, "#health", "webhooks").startswith("0 received, 0 stored, 0 not stored")
            assert page.locator("#audit-probes tbody tr").count() > 0
            assert SCRIPT_TAG in page.locator("#queue").inner_text()
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert requests and all(url.startswith(serve.url + "/") for url in requests), requests
            page.close()
    finally:
        engine.dispose()


def test_texts_from_annotators_and_models_show_as_text(loop: Loop, server: DashboardProcess, browser: Any) -> None:
    page, requests = _open(browser, server.url)
    queue = page.locator("#queue").inner_text()
    assert SCRIPT_TAG in queue and IMG_TAG in queue, "the texts are shown, as text"
    assert HOSTILE_ANNOTATOR in page.locator("#annotators").inner_text()
    assert HOSTILE_ANNOTATOR in page.locator("#labels-by-annotator").inner_text()
    page.locator("#annotators tbody tr").first.hover()
    assert page.evaluate("typeof window.__pwned") == "undefined", "no text ran as script"
    assert page.locator("#queue img, #queue script, #annotators b, #labels-by-annotator b").count() == 0
    assert not [url for url in requests if "203.0.113.9" in url]
    page.close()


def test_each_panel_has_its_own_page_and_nothing_writes(loop: Loop, server: DashboardProcess, browser: Any) -> None:
    for name in PANELS:
        page, requests = _open(browser, f"{server.url}panel/{name}")
        assert [s.get_attribute("id") for s in page.locator("section.panel").all()] == [f"panel-{name}"]
        assert all(url.startswith(server.url) for url in requests)
        page.close()
    assert httpx.post(server.url, content=b"x").status_code == 405
    assert httpx.delete(f"{server.url}panel/queue").status_code == 405
    missing = httpx.get(f"{server.url}panel/nope")
    assert missing.status_code == 404 and "panels: model" in missing.text
    assert "Content-Security-Policy" in httpx.get(server.url).headers


def test_snapshot_is_one_file_that_draws_its_charts_offline(loop: Loop, browser: Any, tmp_path: Path) -> None:
    out = tmp_path / "loop.html"
    proc = prefloop(loop.folder, "dashboard", "--snapshot", str(out), check=True)
    assert str(out) in proc.stdout
    page, requests = _open(browser, out.as_uri())
    assert requests == [out.as_uri()], "nothing but the file itself is loaded"
    assert page.locator("#current-model").inner_text() == loop.status["current_model"]
    assert page.locator("div.chart svg").count() == page.locator("script[data-chart]").count() >= 4
    assert SCRIPT_TAG in page.locator("#queue").inner_text()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    page.close()


def test_a_phone_sees_every_panel_without_sideways_scrolling(server: DashboardProcess, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(server.url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for name in PANELS:
        box = page.locator(f"#panel-{name}").bounding_box()
        assert box is not None and box["width"] <= 390
    page.close()


def test_at_1280_px_the_wide_tables_fit_their_panels(server: DashboardProcess, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server.url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    for table in ("#versions", "#queue"):
        wrap = page.locator(table).first
        sizes = wrap.evaluate("t => [t.scrollWidth, t.parentElement.clientWidth]")
        assert sizes[0] <= sizes[1], (table, sizes)  # every column visible, no scrolling inside the panel
    page.close()


def test_the_token_guards_every_route(loop: Loop) -> None:
    process = DashboardProcess(loop.folder, env={"PREFLOOP_DASHBOARD_TOKEN": "s3cret-token"})
    try:
        for path in ("", "panel/queue", "static/vega.min.js"):
            refused = httpx.get(process.url + path)
            assert refused.status_code == 401 and "PREFLOOP_DASHBOARD_TOKEN" in refused.text
            assert "s3cret-token" not in refused.text
        assert httpx.get(process.url, headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert httpx.get(process.url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        with httpx.Client() as client:
            first = client.get(process.url + "panel/queue?token=s3cret-token")
            assert first.status_code == 303 and first.headers["location"] == "/panel/queue"
            assert client.get(process.url + "panel/queue").status_code == 200, "the cookie is enough after that"
    finally:
        process.stop()


def test_listening_beyond_this_machine_needs_a_token(loop: Loop) -> None:
    proc = prefloop(loop.folder, "dashboard", "--host", "0.0.0.0")
    assert proc.returncode == 2
    assert "PREFLOOP_DASHBOARD_TOKEN" in proc.stderr and "127.0.0.1" in proc.stderr
