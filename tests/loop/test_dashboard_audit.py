"""The audit panel when the newest model has no audit of its own: it shows the newest audited model's audit,
names both models, and never presents the older audit as the newest model's. A real SQLite store, no browser."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from prefloop.config import LoopConfig
from prefloop.loop.dashboard.data import dashboard_data
from prefloop.loop.dashboard.page import render_page
from prefloop.store.db import session_scope
from prefloop.store.versions import record_audit, record_model_version

AUDIT = {
    "n_pairs": 40,
    "audited_at": "2026-12-08T01:02:03+00:00",
    "length_correlation": {"r": -0.41, "ci": [-0.52, -0.3]},
    "probes": [
        {"name": "verbose", "mean_shift": -0.2, "ci": [-0.3, -0.1], "flip_rate": 0.05, "flip_ci": [0.01, 0.1]},
    ],
}


def _version(session: Session, name: str) -> None:
    record_model_version(
        session,
        name=name,
        parent_id=None,
        base_model="minilm",
        mode="adapted",
        config={},
        artifact_path=f"/nowhere/{name}",
        snapshot={},
        metrics={},
    )


def test_the_audit_panel_names_the_older_audited_model_when_the_newest_has_none(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    with session_scope(sqlite_engine) as session:
        _version(session, "rm-old")
        record_audit(session, "rm-old", AUDIT)
        _version(session, "rm-new")  # a retrain with no audit (e.g. [milestone] audit_pairs turned off)
    config = LoopConfig(artifacts_dir=str(tmp_path / "artifacts"))
    data = dashboard_data(sqlite_engine, config)
    panel = data["panels"]["audit"]
    assert panel["model"] == "rm-new" and panel["audit"]["model"] == "rm-old"
    assert panel["audit"]["length_r"] == -0.41 and panel["audit"]["n_pairs"] == 40
    html = render_page(data, panels=("audit",), snapshot=True)
    status = re.search(r'<p id="audit-status">(.*?)</p>', html, re.S)
    assert status is not None
    text = re.sub(r"<[^>]+>", "", status.group(1))
    assert "Audit of rm-old on 40 labelled pairs" in text
    assert "the newest model with an audit; rm-new has none" in text

    with session_scope(sqlite_engine) as session:
        record_audit(session, "rm-new", {**AUDIT, "n_pairs": 60})
    panel = dashboard_data(sqlite_engine, config)["panels"]["audit"]
    assert panel["audit"]["model"] == "rm-new" and panel["audit"]["n_pairs"] == 60
    assert "has none" not in render_page(dashboard_data(sqlite_engine, config), panels=("audit",), snapshot=True)
