"""Engines, sessions and migrations: where the store lives and how it reaches head."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from prefloop.resources import shipped_folder

__all__ = [
    "DEFAULT_DB_URL",
    "check_drift",
    "current_revision",
    "init_db",
    "make_engine",
    "migrations_dir",
    "normalize_url",
    "resolve_db_url",
    "session_scope",
]

DEFAULT_DB_URL = "sqlite:///prefloop.db"


def resolve_db_url(cli_value: str | None = None) -> str:
    """``--db`` wins, then ``PREFLOOP_DB_URL``, then ``prefloop.db`` in the working directory."""
    return normalize_url(cli_value or os.environ.get("PREFLOOP_DB_URL") or DEFAULT_DB_URL)


def normalize_url(url: str) -> str:
    """Accept a bare file path for SQLite and plain ``postgresql://`` (use psycopg 3)."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
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
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def init_db(url: str) -> str:
    """Create the database or upgrade it to the newest schema; return the revision."""
    from alembic import command

    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
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
