"""Shared fixtures: a fresh real SQLite file, or a throwaway PostgreSQL database, per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from prefloop.store.db import init_db, make_engine

# prefloop needs no model hub at run time; neither do its tests (nor the commands they run).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PG_ADMIN_URL = os.environ.get("PREFLOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session; dropped at the end."""
    name = f"prefloop_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the suite must not silently skip the PostgreSQL half
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required for the store tests: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _reset_pg(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """A migrated, empty store on SQLite and on PostgreSQL (each test runs on both)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
    else:
        url = request.getfixturevalue("pg_server_url")
        _reset_pg(url)
    init_db(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    url = f"sqlite:///{tmp_path}/store.db"
    init_db(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


# The real annotation servers (session-scoped: one of each per test run, started on first use).
from tests.backends.harness_argilla import argilla_server  # noqa: E402, F401
from tests.backends.harness_label_studio import label_studio_server  # noqa: E402, F401
