"""Writing pairs (with their prompts, responses and imported labels) in idempotent batches."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from prefloop.store.models import Annotator, Label, Pair, Prompt, Response, utcnow
from prefloop.types import CanonicalPair, Choice, PairRecord, content_hash

__all__ = [
    "AddedCounts",
    "add_pairs",
    "chunks",
    "conversations",
    "insert_ignore",
    "pairs_by_keys",
    "prepare_bulk_load",
]


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
    """INSERT rows, silently skipping those that hit the unique constraint on ``keys``.

    One statement executed for many parameter sets (the driver's executemany): compiling
    a bound parameter per value, as ``.values(rows)`` did, cost 80 % of an ingest's time.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).on_conflict_do_nothing(index_elements=list(keys))
    for chunk in chunks(rows, 10000):
        session.execute(statement, list(chunk))


def _processor(table: Table, column: str, dialect: Any) -> Any:
    """The column type's own bind processor, except JSON: plain ``json.dumps`` (the C encoder), and
    Python None as SQL NULL, which is what "no messages" means."""
    if isinstance(table.c[column].type, JSON):
        return lambda value: None if value is None else "{}" if value == {} else json.dumps(value)
    return table.c[column].type.dialect_impl(dialect).bind_processor(dialect)


def _converted(
    table: Table, rows: Sequence[dict[str, Any]], columns: list[str], dialect: Any, skip: Iterable[str]
) -> Iterator[tuple[Any, ...]]:
    """Each row's values in ``columns`` order, converted by the column's type (``skip``: left as they are)."""
    skipped = set(skip)
    processors = [None if c in skipped else _processor(table, c, dialect) for c in columns]
    get = itemgetter(*columns) if len(columns) > 1 else (lambda r: (r[columns[0]],))
    convert = [(i, p) for i, p in enumerate(processors) if p]
    for r in rows:
        values = list(get(r))
        for i, p in convert:
            values[i] = p(values[i])
        yield tuple(values)


def _bulk_insert_ignore(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    constants: dict[str, Any] | None = None,
    lookups: dict[str, tuple[Table, str]] | None = None,
) -> int:
    """``insert_ignore`` for ingest's hot path; returns how many rows were new.

    Values are converted by each column's own type (``constants``, the same for every
    row, once) and handed straight to the driver: SQLite's executemany, PostgreSQL's COPY
    into a temporary table then one INSERT ... SELECT (psycopg's executemany paid a round
    trip per row). SQLAlchemy's per-row parameter handling was most of an ingest's time.
    ``lookups`` name foreign-key columns whose row value is a natural key to resolve in
    the database (``{"prompt_id": (prompts, "hash")}``), so ids never travel to Python.
    Rows must all carry the same keys and every column without a database default (no
    Python-side defaults are applied here), which ``add_pairs`` guarantees. The driver's
    row count says how many rows were new: no query tells new rows from stored ones.
    """
    if not rows:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    constants, lookups = constants or {}, lookups or {}
    columns = list(rows[0])
    fixed = tuple(
        p(v) if (p := table.c[c].type.dialect_impl(dialect).bind_processor(dialect)) else v
        for c, v in constants.items()
    )
    names = ", ".join(f'"{c}"' for c in [*columns, *constants])
    conflict = ", ".join(f'"{k}"' for k in keys)
    values = _converted(table, rows, columns, dialect, lookups)
    if dialect.name == "postgresql":
        return _copy_insert(connection, table, columns, values, names, conflict, lookups, fixed)
    slots = [
        f'(SELECT id FROM "{lookups[c][0].name}" WHERE "{lookups[c][1]}" = ?)' if c in lookups else "?" for c in columns
    ] + ["?"] * len(constants)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join(slots)}) ON CONFLICT ({conflict}) DO NOTHING'
    added = 0
    ordered = sorted(values, key=itemgetter(0))  # neighbouring keys touch neighbouring index pages
    for chunk in chunks(ordered, 10000):
        result = connection.exec_driver_sql(sql, [(*v, *fixed) for v in chunk])
        added += max(result.rowcount, 0)
    return added


def _copy_insert(
    connection: Any,
    table: Table,
    columns: list[str],
    values: Iterable[tuple[Any, ...]],
    names: str,
    conflict: str,
    lookups: dict[str, tuple[Table, str]],
    fixed: tuple[Any, ...],
) -> int:
    """PostgreSQL: COPY the rows into a temporary text table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING."""
    dialect = connection.dialect
    stage = f"_prefloop_stage_{table.name}"
    raw = connection.connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{stage}"')
        cursor.execute(
            f'CREATE TEMP TABLE "{stage}" ({", ".join(f"c{i} text" for i in range(len(columns)))}) ON COMMIT DROP'
        )
        with cursor.copy(f'COPY "{stage}" FROM STDIN') as copy:
            for row in values:
                copy.write_row(tuple(None if v is None else str(v) for v in row))
        exprs = [
            f'(SELECT id FROM "{lookups[c][0].name}" WHERE "{lookups[c][1]}" = s.c{i})'
            if c in lookups
            else f"s.c{i}::{table.c[c].type.compile(dialect)}"
            for i, c in enumerate(columns)
        ]
        exprs += ["%s"] * len(fixed)
        cursor.execute(
            f'INSERT INTO "{table.name}" ({names}) SELECT {", ".join(exprs)} FROM "{stage}" s '
            f"ON CONFLICT ({conflict}) DO NOTHING",
            fixed,
        )
        added = max(cursor.rowcount, 0)
        cursor.execute(f'DROP TABLE "{stage}"')
    return added


def _import_annotator(session: Session, name: str) -> int:
    insert_ignore(
        session,
        Annotator.__table__,
        [{"backend": "import", "external_id": name, "name": name, "created_at": utcnow()}],
        ["backend", "external_id"],
    )
    annotator_id = session.scalar(
        select(Annotator.id).where(Annotator.backend == "import", Annotator.external_id == name)
    )
    assert annotator_id is not None
    return annotator_id


# Reserved keys a reader puts in a record's metadata for the label, not the pair (data.fields).
_LABEL_KEY, _LABEL_RAW = "_label_key", "_label_raw"


def _label_source_id(key: str, who: str, dimension: str, label_key: str | None) -> str:
    """The label's identity at its source: pair, annotator, dimension, and the source's own id if any.

    Without the source's id, two rows judging the same texts by the same annotator (PandaLM
    compares some identical answers from different model pairs) would collapse into one.
    """
    base = f"{key}:{who}:{dimension}"
    if label_key is None:
        return base if len(base) <= 200 else f"{key}:{content_hash(base)[:40]}"
    full = f"{base}:{label_key}"
    return full if len(full) <= 200 else f"{key}:{content_hash(full)[:40]}"


def _texts(records: Sequence[tuple[PairRecord, CanonicalPair]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Prompt and response rows of a batch, once each; message lists ride along when a reader kept them."""
    prompts: dict[str, dict[str, Any]] = {}
    responses: dict[str, dict[str, Any]] = {}
    for r, c in records:
        meta = r.metadata
        if c.prompt_hash not in prompts:
            prompts[c.prompt_hash] = {
                "hash": c.prompt_hash,
                "text": r.prompt,
                "messages": meta.get("prompt_messages") if meta else None,
            }
        turns = (meta.get("response_messages") or {}) if meta else {}
        model_a, model_b = (r.model_b, r.model_a) if c.flipped else (r.model_a, r.model_b)
        if c.hash_a not in responses:
            responses[c.hash_a] = {
                "hash": c.hash_a,
                "text": c.response_a,
                "model_name": model_a,
                "metadata": {"messages": turns[c.hash_a]} if c.hash_a in turns else {},
            }
        if c.hash_b not in responses:
            responses[c.hash_b] = {
                "hash": c.hash_b,
                "text": c.response_b,
                "model_name": model_b,
                "metadata": {"messages": turns[c.hash_b]} if c.hash_b in turns else {},
            }
    return list(prompts.values()), list(responses.values())


def add_pairs(session: Session, records: Sequence[PairRecord], source: str, split: str = "pool") -> AddedCounts:
    """Store a batch of pairs and their labels; anything already stored is left as it is.

    Responses are ordered canonically by content hash; a label given against the
    other order is flipped. Imported labels belong to annotator ``import:<source>``
    unless a record names its own annotator.
    """
    counts = AddedCounts(pairs_seen=len(records))
    now = utcnow()
    oriented = [(r, r.canonical()) for r in records]
    prompt_rows, response_rows = _texts(oriented)
    created = {"created_at": now}
    _bulk_insert_ignore(session, Prompt.__table__, prompt_rows, ["hash"], created)
    _bulk_insert_ignore(session, Response.__table__, response_rows, ["hash"], created)

    pair_rows: dict[str, dict[str, Any]] = {}
    label_rows: list[tuple[str, PairRecord, Choice]] = []
    for r, c in oriented:
        if c.key not in pair_rows:
            meta = (
                {
                    k: v
                    for k, v in r.metadata.items()
                    if k not in (_LABEL_KEY, _LABEL_RAW, "_unread", "response_messages")
                }
                if r.metadata
                else {}
            )
            pair_rows[c.key] = {
                "key": c.key,
                "prompt_id": c.prompt_hash,
                "response_a_id": c.hash_a,
                "response_b_id": c.hash_b,
                "metadata": meta,
            }
        if c.label is not None:
            label_rows.append((c.key, r, c.label))
    prompts, responses = Prompt.__table__, Response.__table__
    counts.pairs_added = _bulk_insert_ignore(
        session,
        Pair.__table__,
        list(pair_rows.values()),
        ["key"],
        {"source": source, "split": split, "created_at": now},
        lookups={
            "prompt_id": (prompts, "hash"),
            "response_a_id": (responses, "hash"),
            "response_b_id": (responses, "hash"),
        },
    )
    if not label_rows:
        return counts

    annotators: dict[str, int] = {}
    rows: dict[str, dict[str, Any]] = {}
    for key, r, choice in label_rows:
        who = r.annotator or f"import:{source}"
        if who not in annotators:
            annotators[who] = _import_annotator(session, who)
        dimension = r.dimension or "overall"
        meta = r.metadata or {}
        source_id = _label_source_id(key, who, dimension, meta.get(_LABEL_KEY))
        raw = dict(meta.get(_LABEL_RAW) or {})
        if r.source_line:
            raw["line"] = r.source_line
        rows[source_id] = {
            "pair_id": key,
            "annotator_id": annotators[who],
            "choice": choice.value,
            "strength": r.strength,
            "dimension": dimension,
            "rationale": r.rationale,
            "source_id": source_id,
            "raw": raw,
        }
    counts.labels_seen = len(label_rows)
    counts.labels_added = _bulk_insert_ignore(
        session,
        Label.__table__,
        list(rows.values()),
        ["backend", "project", "source_id", "version"],
        {"backend": "import", "project": source, "version": "1", "pulled_at": now, "is_current": True},
        lookups={"pair_id": (Pair.__table__, "key")},
    )
    return counts


def pairs_by_keys(session: Session, keys: Iterable[str]) -> dict[str, Pair]:
    keys = list(set(keys))
    out: dict[str, Pair] = {}
    for chunk in chunks(keys):
        out.update({p.key: p for p in session.scalars(select(Pair).where(Pair.key.in_(chunk))).unique()})
    return out


def pair_ids_by_keys(session: Session, keys: Iterable[str]) -> dict[str, int]:
    """Pair key → id, without loading the texts (``record_pull``'s lookup, per webhook delivery too)."""
    keys = list(set(keys))
    out: dict[str, int] = {}
    for chunk in chunks(keys):
        out.update(
            (key, pair_id) for key, pair_id in session.execute(select(Pair.key, Pair.id).where(Pair.key.in_(chunk)))
        )
    return out


def conversations(session: Session, pair_ids: Iterable[int]) -> dict[int, tuple[list[Any], list[Any], list[Any]]]:
    """(prompt messages, response A messages, response B messages) of the pairs that came in as messages.

    Pairs ingested as plain text are absent; a response stored without its own messages is
    one assistant turn.
    """
    ra, rb = Response.__table__.alias("ra"), Response.__table__.alias("rb")
    out: dict[int, tuple[list[Any], list[Any], list[Any]]] = {}
    for chunk in chunks(list(set(pair_ids))):
        query = (
            select(Pair.id, Prompt.messages, ra.c.text, ra.c.metadata, rb.c.text, rb.c.metadata)
            .join(Prompt, Pair.prompt_id == Prompt.id)
            .join(ra, Pair.response_a_id == ra.c.id)
            .join(rb, Pair.response_b_id == rb.c.id)
            .where(Pair.id.in_(chunk), Prompt.messages.is_not(None))
        )
        for pid, messages, text_a, meta_a, text_b, meta_b in session.execute(query):
            if not messages:
                continue
            turns_a = (meta_a or {}).get("messages") or [{"role": "assistant", "content": text_a}]
            turns_b = (meta_b or {}).get("messages") or [{"role": "assistant", "content": text_b}]
            out[pid] = (messages, turns_a, turns_b)
    return out


def prepare_bulk_load(session: Session, cache_mb: int = 32) -> None:
    """Give this connection a bigger SQLite page cache for a long ingest transaction.

    Content-hash keys land at random places in five unique indexes; with SQLite's 2 MB
    default cache every insert past the first few thousand rows re-reads index pages.
    A fixed cache keeps memory flat (bounded by ``cache_mb``) whatever the file's size.
    PostgreSQL manages its own buffers: nothing to do there.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql(f"PRAGMA cache_size=-{cache_mb * 1024}")
