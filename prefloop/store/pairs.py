"""Writing pairs (with their prompts, responses and imported labels) in idempotent batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from prefloop.store.models import Annotator, Label, Pair, Prompt, Response, utcnow
from prefloop.types import Choice, PairRecord, content_hash

__all__ = ["AddedCounts", "add_pairs", "chunks", "insert_ignore", "pair_by_key", "pairs_by_keys"]


@dataclass
class AddedCounts:
    pairs_seen: int = 0
    pairs_added: int = 0
    labels_seen: int = 0
    labels_added: int = 0

    def __iadd__(self, other: AddedCounts) -> AddedCounts:
        self.pairs_seen += other.pairs_seen
        self.pairs_added += other.pairs_added
        self.labels_seen += other.labels_seen
        self.labels_added += other.labels_added
        return self


def chunks(values: Sequence[Any], size: int = 2000) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size``: IN lists and multi-row INSERTs stay within driver limits."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def insert_ignore(session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """INSERT rows, silently skipping those that hit the unique constraint on ``keys``."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # SQLite caps bound parameters per statement; keep statements comfortably below.
    width = max(1, len(rows[0]))
    for chunk in chunks(rows, max(1, 30000 // width)):
        session.execute(insert(table).values(list(chunk)).on_conflict_do_nothing(index_elements=list(keys)))


def _ids_by(session: Session, column: Any, id_column: Any, values: Iterable[str], *where: Any) -> dict[str, int]:
    """Map values of a uniquely indexed column (within ``where``) to row ids, in index-friendly chunks."""
    values = list(set(values))
    found: dict[str, int] = {}
    for chunk in chunks(values, 5000):
        found.update(dict(session.execute(select(column, id_column).where(*where, column.in_(chunk))).all()))
    return found


def _import_annotator(session: Session, name: str) -> int:
    insert_ignore(session, Annotator.__table__, [{"backend": "import", "external_id": name, "name": name,
                                                 "created_at": utcnow()}], ["backend", "external_id"])
    annotator_id = session.scalar(
        select(Annotator.id).where(Annotator.backend == "import", Annotator.external_id == name)
    )
    assert annotator_id is not None
    return annotator_id


def add_pairs(session: Session, records: Sequence[PairRecord], source: str, split: str = "pool") -> AddedCounts:
    """Store a batch of pairs and their labels; anything already stored is left as it is.

    Responses are ordered canonically by content hash; a label given against the
    other order is flipped. Imported labels belong to annotator ``import:<source>``
    unless a record names its own annotator.
    """
    counts = AddedCounts(pairs_seen=len(records))
    now = utcnow()
    prompts = {content_hash(r.prompt): r.prompt for r in records}
    responses: dict[str, tuple[str, str | None]] = {}
    for r in records:
        responses.setdefault(content_hash(r.response_a), (r.response_a, r.model_a))
        responses.setdefault(content_hash(r.response_b), (r.response_b, r.model_b))
    insert_ignore(session, Prompt.__table__,
                  [{"hash": h, "text": t, "created_at": now} for h, t in prompts.items()], ["hash"])
    insert_ignore(session, Response.__table__,
                  [{"hash": h, "text": t, "model_name": m, "metadata": {}, "created_at": now}
                   for h, (t, m) in responses.items()], ["hash"])
    prompt_ids = _ids_by(session, Prompt.hash, Prompt.id, prompts)
    response_ids = _ids_by(session, Response.hash, Response.id, responses)

    pair_rows: dict[str, dict[str, Any]] = {}
    label_rows: list[tuple[str, PairRecord, Choice]] = []
    for r in records:
        c = r.canonical()
        pair_rows.setdefault(c.key, {
            "key": c.key, "prompt_id": prompt_ids[c.prompt_hash], "response_a_id": response_ids[c.hash_a],
            "response_b_id": response_ids[c.hash_b], "source": source, "split": split,
            "metadata": dict(r.metadata), "created_at": now,
        })
        if c.label is not None:
            label_rows.append((c.key, r, c.label))
    existing = set(_ids_by(session, Pair.key, Pair.id, pair_rows))
    insert_ignore(session, Pair.__table__, list(pair_rows.values()), ["key"])
    counts.pairs_added = len(set(pair_rows) - existing)
    if not label_rows:
        return counts

    pair_ids = _ids_by(session, Pair.key, Pair.id, pair_rows)
    annotators: dict[str, int] = {}
    rows: dict[str, dict[str, Any]] = {}
    for key, r, choice in label_rows:
        who = r.annotator or f"import:{source}"
        if who not in annotators:
            annotators[who] = _import_annotator(session, who)
        dimension = r.dimension or "overall"
        source_id = f"{key}:{who}:{dimension}"
        rows[source_id] = {
            "pair_id": pair_ids[key], "annotator_id": annotators[who], "choice": choice.value,
            "strength": r.strength, "dimension": dimension, "rationale": r.rationale,
            "backend": "import", "project": source, "source_id": source_id, "version": "1",
            "pulled_at": now, "raw": {"line": r.source_line} if r.source_line else {},
            "is_current": True,
        }
    counts.labels_seen = len(label_rows)
    # (backend, project, source_id) is the prefix of the labels' unique index: no table scan
    before = _ids_by(session, Label.source_id, Label.id, rows, Label.backend == "import", Label.project == source)
    insert_ignore(session, Label.__table__, list(rows.values()), ["backend", "project", "source_id", "version"])
    counts.labels_added = len(set(rows) - set(before))
    return counts


def pair_by_key(session: Session, key: str) -> Pair | None:
    return session.scalar(select(Pair).where(Pair.key == key))


def pairs_by_keys(session: Session, keys: Iterable[str]) -> dict[str, Pair]:
    keys = list(set(keys))
    out: dict[str, Pair] = {}
    for chunk in chunks(keys):
        out.update({p.key: p for p in session.scalars(select(Pair).where(Pair.key.in_(chunk))).unique()})
    return out
