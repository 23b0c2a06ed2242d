"""Stores are created only on purpose, and nothing writes into a database that is not a prefloop store."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.clirun import prefloop
from tests.conftest import PG_ADMIN_URL

READ_COMMANDS = [
    ("stats",),
    ("status",),
    ("export", "out.jsonl"),
    ("score",),
    ("eval",),
    ("train",),
    ("annotators",),
    ("gold", "derive"),
    ("sync",),
    ("sync", "--dry-run"),
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_read_commands_on_a_missing_store_create_nothing(tmp_path: Path, command: tuple[str, ...]) -> None:
    target = tmp_path / "typo" / "nested" / "store.db"
    before = tree(tmp_path)
    proc = prefloop(tmp_path, "--db", str(target), *command)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert f"no store at {target}; run `prefloop init`" in out and "Traceback" not in out
    if command[0] == "sync":
        assert json.loads(proc.stdout.splitlines()[-1])["type"] == "StoreMissing"
    assert tree(tmp_path) == before, "no file or folder was created"


def test_init_and_ingest_create_a_store_and_name_it(tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "good", "rejected": "bad"}) + "\n")
    fresh = tmp_path / "new" / "by-ingest.db"
    proc = prefloop(tmp_path, "ingest", str(data), "--db", str(fresh))
    assert proc.returncode == 0, proc.stderr
    assert f"store: {fresh}" in proc.stderr and fresh.exists()
    init = prefloop(tmp_path, "init", "--db", str(tmp_path / "by-init.db"))
    assert init.returncode == 0 and f"store: {tmp_path / 'by-init.db'}" in init.stderr
    stats = prefloop(tmp_path, "stats", "--json", "--db", str(fresh))
    assert json.loads(stats.stdout)["pairs"] == 1 and f"store: {fresh}" in stats.stderr


@pytest.mark.parametrize("how", [(), ("--file-type", "jsonl")])
def test_ingest_of_a_missing_file_creates_no_store(tmp_path: Path, how: tuple[str, ...]) -> None:
    target = tmp_path / "new" / "store.db"
    proc = prefloop(tmp_path, "ingest", "pairs.jsonl", *how, "--db", str(target))
    assert proc.returncode == 2 and "pairs.jsonl: file not found; nothing was written" in proc.stderr
    assert "store:" not in proc.stderr and not target.exists() and not target.parent.exists()


def _foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "command", [("init",), ("stats",), ("ingest", "pairs.jsonl"), ("sync",), ("status",)], ids=" ".join
)
def test_a_foreign_sqlite_database_is_never_written(tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    other = tmp_path / "app.sqlite"
    _foreign_sqlite(other)
    before, files = digest(other), tree(tmp_path)
    proc = prefloop(tmp_path, *command, "--db", str(other))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"not a prefloop store: {other}" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert digest(other) == before and tree(tmp_path) == files, "not a byte written, no journal left behind"


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n")
    for command in (("init",), ("stats",)):
        proc = prefloop(tmp_path, *command, "--db", str(notes))
        assert proc.returncode == 2 and "not a prefloop store" in proc.stderr and "not a SQLite database" in proc.stderr
    assert notes.read_text() == "shopping list\n"


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    name = f"prefloop_open_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.mark.postgres
def test_postgresql_empty_foreign_and_missing(tmp_path: Path, pg_database: str) -> None:
    empty = prefloop(tmp_path, "stats", "--db", pg_database)
    assert empty.returncode == 2 and "no store at" in empty.stderr and "run `prefloop init`" in empty.stderr
    engine = create_engine(pg_database)
    assert inspect(engine).get_table_names() == [], "a read command created nothing"
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id serial PRIMARY KEY)"))
    for command in (("init",), ("stats",), ("sync",)):
        proc = prefloop(tmp_path, *command, "--db", pg_database)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "not a prefloop store" in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert inspect(engine).get_table_names() == ["invoices"]
    engine.dispose()
    missing = pg_database + "_nope"
    proc = prefloop(tmp_path, "sync", "--db", missing)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["type"] == "StoreMissing" and "does not exist" in last["message"] and "Traceback" not in proc.stderr


@pytest.mark.postgres
def test_postgresql_init_creates_and_an_unreachable_server_is_exit_3(tmp_path: Path, pg_database: str) -> None:
    assert prefloop(tmp_path, "init", "--db", pg_database).returncode == 0
    proc = prefloop(tmp_path, "stats", "--json", "--db", pg_database)
    assert proc.returncode == 0 and json.loads(proc.stdout)["pairs"] == 0
    assert "store: postgresql+psycopg://postgres@127.0.0.1:5432/" in proc.stderr
    down = prefloop(tmp_path, "sync", "--db", "postgresql://postgres@127.0.0.1:9/prefloop")
    assert down.returncode == 3, down.stdout + down.stderr
    last = json.loads(down.stdout.splitlines()[-1])
    assert last["type"] == "StoreUnreachable" and last["kind"] == "store_unreachable"
    assert "Traceback" not in down.stdout + down.stderr
