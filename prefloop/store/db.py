"""Engines, sessions and migrations: where the store lives and how it reaches head."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from prefloop.config import DEFAULT_DB_URL
from prefloop.errors import LockHeld, NotAStore, StoreError, StoreMissing, StoreUnreachable
from prefloop.faults import LOCK_WAITING, checkpoint
from prefloop.resources import shipped_folder

__all__ = [
    "DEFAULT_DB_URL",
    "check_drift",
    "current_revision",
    "describe_url",
    "init_db",
    "kept_only_if_filled",
    "make_engine",
    "migrations_dir",
    "normalize_url",
    "open_store",
    "session_scope",
    "store_state",
    "sync_lock",
]


def normalize_url(url: str) -> str:
    """Accept a bare file path for SQLite and plain ``postgresql://`` (use psycopg 3)."""
    if "://" not in url:  # a path is taken as written: a % or a non-ASCII letter is quoted, not decoded
        return URL.create("sqlite", database=str(Path(url).expanduser())).render_as_string()
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # psycopg prepares a statement after its 5th run on a connection, and PostgreSQL may then
    # keep a generic plan made while a table was still empty. For record_pull's chunked
    # lookups, that plan turned a 1 s re-pull of 20,000 labels into 11 s. Plans here are
    # cheap, so every statement is planned for its own values.
    connect_args = {"prepare_threshold": None} if make_url(url).drivername == "postgresql+psycopg" else {}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrations_dir() -> Path:
    """The Alembic folder: ``migrations/`` of a checkout, or the copy packaged with a wheel."""
    folder = shipped_folder("migrations")
    if not (folder / "env.py").exists():
        raise FileNotFoundError(f"{folder} holds no Alembic env.py; reinstall prefloop")
    return folder


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # the option goes through configparser, where % starts an interpolation: a quoted path has many
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def _private_file(path: Path) -> None:
    """Create a new SQLite file (and missing folders) readable by its owner only: 0600 / 0700, or
    stricter where the umask is (a store holds annotators' emails). SQLite gives its -wal and -shm
    files the main file's mode. An existing file is left as it is."""
    missing = []
    folder = path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(mode=0o700, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def init_db(url: str) -> str:
    """Create the database or upgrade it to the newest schema; return the revision."""
    from alembic import command

    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        _private_file(Path(parsed.database).expanduser())
    engine = make_engine(url)
    try:
        config = _alembic_config(engine)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return current_revision(engine) or "base"
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_drift(engine: Engine) -> list[Any]:
    """Differences between the ORM models and the migrated database (empty = no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from prefloop.store.models import Base

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


# ---- opening a store on purpose ----------------------------------------------------------

_SQLITE_MAGIC = b"SQLite format 3\x00"


# ---- one sync per store --------------------------------------------------------------------


@contextmanager
def sync_lock(engine: Engine, timeout_s: float) -> Iterator[None]:
    """One sync per store: a file lock beside a SQLite file, an advisory lock on PostgreSQL."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        with engine.connect() as conn:
            deadline = time.monotonic() + timeout_s
            waited = False
            while not conn.execute(text("SELECT pg_try_advisory_lock(hashtext('prefloop-sync'))")).scalar():
                if time.monotonic() >= deadline:
                    raise LockHeld("another prefloop sync is running on this database")
                if not waited:
                    checkpoint(LOCK_WAITING)
                    waited = True
                time.sleep(0.5)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext('prefloop-sync'))"))
                conn.commit()
        return
    from filelock import FileLock, Timeout

    database = make_url(str(url)).database or "prefloop"
    lock = FileLock(f"{database}.sync.lock" if database != ":memory:" else "prefloop-memory.sync.lock")
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if timeout_s <= 0:
                raise
            checkpoint(LOCK_WAITING)
            lock.acquire(timeout=timeout_s)
    except Timeout:
        raise LockHeld(f"another prefloop sync holds {lock.lock_file}") from None
    try:
        yield
    finally:
        lock.release()


def describe_url(url: str) -> str:
    """A store's URL for messages: the file path of a SQLite store, the URL without password otherwise."""
    parsed = make_url(normalize_url(url))
    if parsed.drivername.startswith("sqlite"):
        return str(Path(parsed.database or ":memory:").expanduser().resolve()) if parsed.database else ":memory:"
    return parsed.render_as_string(hide_password=True)


def _revisions() -> tuple[set[str], str | None]:
    """Every revision this prefloop's migrations know, and the head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    script = ScriptDirectory.from_config(config)
    return {r.revision for r in script.walk_revisions()}, script.get_current_head()


def _sqlite_tables(path: Path) -> tuple[list[str], str | None]:
    """Tables and Alembic revision of a SQLite file, read without writing a byte (read-only, no pragmas)."""
    with path.open("rb") as handle:
        head = handle.read(len(_SQLITE_MAGIC))
    if head and head != _SQLITE_MAGIC:
        raise NotAStore(f"not a prefloop store: {path} is not a SQLite database")
    if not head:
        return [], None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            revision = None
            if "alembic_version" in tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise NotAStore(f"not a prefloop store: {path}: {exc}") from None
    return tables, revision


def _server_tables(url: str) -> tuple[list[str], str | None]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            revision = None
            if "alembic_version" in tables:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return tables, revision
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if "does not exist" in reason:
            raise StoreMissing(
                f"no store at {describe_url(url)}: {reason}; create the database, then run `prefloop init`"
            ) from None
        raise StoreUnreachable(f"cannot reach the store at {describe_url(url)}: {reason}") from None
    finally:
        engine.dispose()


def store_state(url: str) -> tuple[str, str | None]:
    """``("missing" | "empty" | "prefloop" | "foreign", revision)`` of the database at ``url``; writes nothing."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        if parsed.database in (None, "", ":memory:"):
            return "empty", None
        path = Path(parsed.database).expanduser()
        if path.is_dir():
            raise NotAStore(f"not a prefloop store: {path} is a folder")
        if not path.exists():
            return "missing", None
        tables, revision = _sqlite_tables(path)
    else:
        tables, revision = _server_tables(url)
    if not tables:
        return "empty", None
    known, _ = _revisions()
    if revision not in known:
        return "foreign", revision
    return "prefloop", revision


@contextmanager
def kept_only_if_filled(url: str) -> Iterator[None]:
    """A SQLite store that does not exist yet is removed again when the block fails: a failed
    ingest into a new path leaves nothing behind. An existing store is left to its transaction."""
    url = normalize_url(url)
    parsed = make_url(url)
    path = Path(parsed.database).expanduser() if parsed.drivername.startswith("sqlite") and parsed.database else None
    new = path is not None and parsed.database != ":memory:" and not path.exists()
    try:
        yield
    except BaseException:
        if new and path is not None:
            for leftover in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
                leftover.unlink(missing_ok=True)
        raise


def open_store(url: str, *, create: bool = False, migrate: bool = True) -> Engine:
    """An engine on the prefloop store at ``url``, or a ``StoreError`` saying what to do.

    Only ``create=True`` (``init``, ``ingest``) makes a new store; nothing is ever written into
    a database that is not a prefloop store. An older prefloop store is upgraded unless
    ``migrate`` is false (a dry run), which refuses it instead.
    """
    url = normalize_url(url)
    where = describe_url(url)
    state, revision = store_state(url)
    if state == "foreign":
        found = f"Alembic revision {revision!r}" if revision else "tables that are not prefloop's"
        raise NotAStore(
            f"not a prefloop store: {where} holds {found}; prefloop writes only into its own store "
            "(use --db to point at another file or database)"
        )
    if state in ("missing", "empty") and not create:
        raise StoreMissing(f"no store at {where}; run `prefloop init` (or point --db / PREFLOOP_DB_URL at one)")
    _, head = _revisions()
    if revision != head:
        if not migrate:
            raise StoreError(
                f"the store at {where} is at schema revision {revision}, not {head}; run `prefloop init` to upgrade it"
            )
        init_db(url)
    return make_engine(url)
