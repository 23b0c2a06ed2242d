"""``prefloop pull``: bring the labels of a project prefloop did not create into the store.

The backend reads the project as its tool holds it (``pull_project``: Label Studio tasks,
Argilla records, with the label config / dataset settings); the export readers of
``data.formats`` read them exactly as they read that tool's export files (the same field and
verdict detection); the labels then go through the store's pull path (``record_pull``), under a
cursor of their own, so a second pull adds only what changed: an edit is a new version of the
same annotation (the old one kept, superseded), a deleted annotation is marked deleted, and
nothing is stored twice. The pairs are stored first, in the same transaction.

Each annotation's identity is its id at the tool (Label Studio annotation id, Argilla
record + user) and its version the tool's ``updated_at``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from prefloop.backends import AnnotationBackend
from prefloop.data.fields import LABEL_KEY, LABEL_RAW, UNREAD, ShapeOptions
from prefloop.data.formats import argilla as argilla_format
from prefloop.data.formats import label_studio as label_studio_format
from prefloop.errors import NoLabelRead, PrefloopError, RowProblem
from prefloop.store.db import session_scope
from prefloop.store.labels import get_cursor, record_pull, set_cursor
from prefloop.store.pairs import add_pairs
from prefloop.types import AnnotatorRef, PairRecord, ProjectPull, PulledLabel, PullResult

__all__ = ["adopt_project", "project_records"]


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def project_records(backend: str, pulled: ProjectPull, opts: ShapeOptions) -> list[list[PairRecord]]:
    """The records of each item, read by the tool's export reader; a bad item names the project and item."""
    where_name = f"{backend}:{opts.extra.get('project', '')}"
    out = []
    for index, item in enumerate(pulled.items, start=1):
        texts = item.get("data") if backend == "label_studio" else item.get("fields")
        for canonical, key in (opts.mapping or {}).items():  # --map names a task data key / record field
            key = key.removeprefix("data.").removeprefix("fields.")
            if isinstance(texts, dict) and key in texts:
                item = {**item, canonical: texts[key]}
        where = (where_name, int(item.get("id") or index) if str(item.get("id", "")).isdigit() else index)
        try:
            if backend == "label_studio":
                out.append(label_studio_format.task_records(item, where, opts))
            else:
                fields = {**item["fields"], **{k: item[k] for k in ("prompt", "response_a", "response_b") if k in item}}
                out.append(argilla_format.record_labels(fields, item["responses"], item["id"], where, opts))
        except RowProblem as problem:
            raise PrefloopError(
                f"cannot read item {item.get('id')} of {where_name}: {problem}\n"
                "Name the texts with --map prompt=... --map response_a=... --map response_b=..., "
                "or say what a choice means with --label-map."
            ) from None
    return out


def _pulled_label(record: PairRecord, prefix: str, users: dict[str, str]) -> PulledLabel:
    canonical = record.canonical()
    meta = record.metadata or {}
    raw = dict(meta.get(LABEL_RAW) or {})
    who = (record.annotator or "").removeprefix(prefix)
    assert canonical.label is not None
    return PulledLabel(
        pair_key=canonical.key,
        annotator=AnnotatorRef(who, users.get(who)),
        choice=canonical.label,
        source_id=str(meta.get(LABEL_KEY)),
        version=str(raw.get("updated_at") or raw.get("created_at") or "1"),
        strength=record.strength,
        rationale=record.rationale,
        dimension=record.dimension,
        created_at=_when(raw.get("created_at") or raw.get("inserted_at")),
        updated_at=_when(raw.get("updated_at")),
        raw=raw,
    )


def adopt_project(engine: Engine, backend: AnnotationBackend, opts: ShapeOptions | None = None) -> dict[str, Any]:
    """Pull the labels of ``backend.settings.project`` (an existing project) into the store; the counts."""
    project = backend.settings.project
    opts = opts or ShapeOptions()
    with session_scope(engine) as session:
        cursor = get_cursor(session, backend.name, project)
    pulled = backend.pull_project(since=cursor)
    extra: dict[str, Any] = {"project": project}
    if backend.name == "label_studio":
        extra["label_studio_config"] = pulled.settings.get("label_config")
    else:
        extra["argilla_settings"] = pulled.settings
    opts = replace(opts, extra={**opts.extra, **extra})
    prefix = "label-studio:" if backend.name == "label_studio" else "argilla:"
    users = {str(k): str(v) for k, v in (pulled.settings.get("users") or {}).items()}
    pairs: list[PairRecord] = []
    labels: list[PulledLabel] = []
    alive: dict[str, set[str]] = {}
    read = project_records(backend.name, pulled, opts)
    for records in read:
        for record in records:
            key = record.canonical().key
            alive.setdefault(key, set())
            pairs.append(replace(record, label=None, metadata={}, annotator=None))
            if record.label is not None:
                label = _pulled_label(record, prefix, users)
                labels.append(label)
                alive[key].add(label.source_id)
    unread = sorted({n for records in read for r in records for n in (r.metadata or {}).get(UNREAD, ())})
    if not labels and unread:  # annotations there, none read: say which control, never a silent zero
        raise NoLabelRead(
            f"{backend.name}:{project}",
            f"its annotations gave no label: could not read {', '.join(repr(n) for n in unread)}",
            f"Say what the values of {unread[0]!r} mean with --label-map, e.g. 'Answer 1=a,Answer 2=b,Same=tie', "
            "or name the texts with --map prompt=KEY --map response_a=KEY --map response_b=KEY.",
        )
    result = PullResult(labels=labels, cursor=pulled.cursor, alive={k: frozenset(v) for k, v in alive.items()})
    with session_scope(engine) as session:  # pairs, labels and cursor: one transaction
        added = add_pairs(session, pairs, source=f"{backend.name}:{project}") if pairs else None
        counts = record_pull(session, backend.name, project, result)
        set_cursor(session, backend.name, project, result.cursor)
    return {
        "step": "pull",
        "backend": backend.name,
        "project": project,
        "items": len(pulled.items),
        "pairs_added": added.pairs_added if added else 0,
        "pulled": len(labels),
        "new": counts.new,
        "edited": counts.edited,
        "deleted": counts.deleted,
        "duplicates": counts.duplicates,
        "cursor": result.cursor,
    }
