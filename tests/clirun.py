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
    assert_no_secret(proc, secrets_of(env, cwd))
    return proc


_SECRET_KEYS = ("LABEL_STUDIO_API_KEY", "ARGILLA_API_KEY", "PREFLOOP_BACKEND_API_KEY")
_URL_KEYS = ("PREFLOOP_BACKEND_URL", "LABEL_STUDIO_URL", "ARGILLA_API_URL", "PREFLOOP_DB_URL")


def secrets_of(env: dict[str, str], cwd: Path) -> list[str]:
    """The secrets a run was given: API keys and URL passwords from ``env`` and ``cwd/prefloop.toml``."""
    import tomllib
    from urllib.parse import urlsplit

    keys = [env[k] for k in _SECRET_KEYS if env.get(k)]
    urls = [env[k] for k in _URL_KEYS if env.get(k)]
    toml = cwd / "prefloop.toml"
    if toml.is_file():
        try:
            section = tomllib.loads(toml.read_text(encoding="utf-8")).get("backend", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            section = {}
        if isinstance(section, dict):
            keys += [str(section["api_key"])] if section.get("api_key") else []
            urls += [str(section["url"])] if section.get("url") else []
    for url in urls:
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        keys += [password] if password else []
    return [k for k in keys if len(k) >= 6]  # prefloop masks secrets of 6 characters and more


def assert_no_secret(proc: subprocess.CompletedProcess[str], secrets: list[str]) -> None:
    """Every run of the suite with secrets set: none of them in its output, whatever it printed."""
    for secret in secrets:
        for name, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            assert secret not in (text or ""), f"a secret reached {name} of {' '.join(map(str, proc.args))}"


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
