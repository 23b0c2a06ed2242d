"""Run the prefloop CLI as a test runs it: in this process by default, or as a real subprocess.

In process, a command is the same click command a user runs (same parsing, same error map, same
exit codes), invoked with click's ``CliRunner`` from the command's working directory and with the
environment it would get. That saves the two to three seconds each subprocess spends importing
torch and transformers, which is most of the fast local loop. ``PREFLOOP_TEST_CLI=subprocess``
sends every call through ``python -m prefloop.cli`` instead; tests about the process itself
(signals, kill -9, the installed entry point) call :func:`prefloop_subprocess` directly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

SECRET_VARS = (
    "LABEL_STUDIO_API_KEY",
    "ARGILLA_API_KEY",
    "PREFLOOP_BACKEND_API_KEY",
    "PREFLOOP_LABEL_STUDIO_API_KEY",
    "PREFLOOP_DB_URL",
    "PREFLOOP_CONFIG",
    "PREFLOOP_BACKEND_URL",
    "LABEL_STUDIO_URL",
    "ARGILLA_API_URL",
)

MODE_ENV = "PREFLOOP_TEST_CLI"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the settings and secrets a developer's shell may hold, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    return {**env, **extra}


def prefloop(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = False, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``prefloop ARGS`` run in ``cwd`` with ``env`` (default: :func:`clean_env`); raises if ``check`` and it fails."""
    env = clean_env() if env is None else env
    if os.environ.get(MODE_ENV) == "subprocess":
        proc = prefloop_subprocess(cwd, *args, env=env, timeout=timeout)
    else:
        proc = _in_process(cwd, list(args), env)
    if check and proc.returncode != 0:
        raise AssertionError(f"prefloop {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """:func:`prefloop` that fails the test when the command fails, unless ``check=False``."""
    return prefloop(cwd, *args, env=env, check=check)


def prefloop_subprocess(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m prefloop.cli ARGS`` as a real child process."""
    return subprocess.run(
        [sys.executable, "-m", "prefloop.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env() if env is None else env,
    )


def _in_process(cwd: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from click.testing import CliRunner

    from prefloop.cli import cli

    overrides: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    overrides.update({k: v for k, v in env.items() if os.environ.get(k) != v})
    threads = _torch_threads()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, args, env=overrides, prog_name="prefloop", catch_exceptions=True)
    finally:
        os.chdir(before)
        _restore_torch_threads(threads)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # what the interpreter prints for an uncaught exception (click re-raises one under --debug)
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["prefloop", *args], result.exit_code, result.stdout, stderr)


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return None if torch is None else int(torch.get_num_threads())


def _restore_torch_threads(threads: int | None) -> None:
    """A command may set torch's thread count for its process; the test process keeps its own."""
    torch = sys.modules.get("torch")
    if torch is not None and threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
