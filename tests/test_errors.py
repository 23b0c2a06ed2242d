"""One error tree: every error a user can cause is a PrefloopError that knows its exit code."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import StatementError

from prefloop import errors
from prefloop.acquisition import get_strategy
from prefloop.backends import BackendError, BackendUnreachable, get_backend_class
from prefloop.errors import ConfigError, ExitCode, Interrupted, PrefloopError, exit_code_for, underlying_error
from prefloop.loop.sync import error_entry
from tests.clirun import clean_env, prefloop


def test_every_error_class_is_a_prefloop_error_with_an_exit_code() -> None:
    classes = [getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)]
    raised = [c for c in classes if issubclass(c, Exception) and c is not ExitCode]
    assert len(raised) >= 15
    for cls in raised:
        assert issubclass(cls, PrefloopError), cls
        assert cls.exit_code in set(ExitCode), cls


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.ConfigError("x"), 2),
        (errors.StoreMissing("x"), 2),
        (errors.NotAStore("x"), 2),
        (errors.InvalidRequest("x"), 2),
        (errors.StrategyError("x"), 2),
        (errors.StoreUnreachable("x"), 3),
        (BackendUnreachable("x"), 3),
        (errors.LockHeld("x"), 4),
        (BackendError("x"), 1),
        (errors.ModelError("x"), 1),
        (errors.Interrupted("SIGINT"), 130),
        (errors.Interrupted("SIGTERM"), 143),
        (KeyboardInterrupt(), 130),
        (ValueError("a bug"), 1),
    ],
)
def test_one_map_from_error_to_exit_code(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code


def test_backend_errors_are_prefloop_errors_from_errors_py() -> None:
    assert BackendError is errors.BackendError and issubclass(BackendError, PrefloopError)
    with pytest.raises(BackendError, match="unknown backend 'nope'; known backends: argilla, label_studio"):
        get_backend_class("nope")


@pytest.mark.parametrize("spec", ["bold", "diverse:bold", "random:bald", "diverse"])
def test_a_strategy_a_user_misspells_is_a_config_error(spec: str) -> None:
    with pytest.raises(errors.StrategyError) as caught:
        get_strategy(spec)
    assert isinstance(caught.value, errors.ConfigError) and isinstance(caught.value, ValueError)
    assert caught.value.exit_code == 2


def test_model_settings_a_user_chooses_fail_as_model_errors() -> None:
    from prefloop.model.render import render

    with pytest.raises(errors.ModelError, match="needs a tokenizer with a chat template"):
        render("Human: hi", "hello", "chat", tokenizer=None)
    with pytest.raises(errors.ModelError, match="unknown template 'html'"):
        render("hi", "hello", "html")


def test_sigterm_stops_any_command_with_143_and_an_all_or_nothing_store(tmp_path: Path) -> None:
    rows = (
        json.dumps({"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}) + "\n" for i in range(150_000)
    )
    (tmp_path / "big.jsonl").write_text("".join(rows))
    env = clean_env()
    subprocess.run(
        [sys.executable, "-m", "prefloop.cli", "init"], cwd=tmp_path, env=env, check=True, capture_output=True
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefloop.cli", "ingest", "big.jsonl"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().startswith("store: "), "the store is open: the ingest has begun"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, out + err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    stats = subprocess.run(
        [sys.executable, "-m", "prefloop.cli", "stats", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert json.loads(stats.stdout)["pairs"] == 0, "the interrupted ingest wrote nothing"


def test_a_plain_value_error_a_command_reports_keeps_exit_code_1(tmp_path: Path) -> None:
    (tmp_path / "tiny.jsonl").write_text(
        json.dumps({"prompt": "p", "response_a": "x", "response_b": "y", "label": "a"}) + "\n"
    )
    proc = prefloop(tmp_path, "simulate", "tiny.jsonl", "--out", "sim")
    assert proc.returncode == 1 and "seed_size=40 exceeds the 1 pool pairs" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_interrupt_that_sqlalchemy_wrapped_still_exits_143() -> None:
    # SIGTERM's handler raises Interrupted wherever the process is; when that is inside SQLAlchemy
    # before its execution context exists, SQLAlchemy re-raises it as a StatementError whose `orig`
    # is the Interrupted (seen in CI: a kill during ingest's `PRAGMA cache_size` exited 1).
    interrupted = Interrupted("SIGTERM")
    wrapped = StatementError(str(interrupted), "PRAGMA cache_size=-32768", None, interrupted)
    assert underlying_error(wrapped) is interrupted
    assert exit_code_for(wrapped) == 143
    assert error_entry(wrapped)["kind"] == "interrupted"
    assert error_entry(wrapped)["exit_code"] == 143


def test_an_error_raised_while_handling_another_is_a_new_error() -> None:
    try:
        try:
            raise ConfigError("bad key")
        except ConfigError:
            raise TypeError("a bug in the handler")  # noqa: B904 (the point: an implicit context)
    except TypeError as exc:
        assert underlying_error(exc) is exc
        assert exit_code_for(exc) == 1
