"""The in-process runner the CLI tests use says exactly what ``python -m prefloop.cli`` says."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.clirun import _in_process, clean_env, prefloop_subprocess

# (arguments, the exit code both runners must give)
CASES = [
    (("init",), 0),
    (("ingest", "pairs.jsonl"), 0),
    (("stats", "--json"), 0),
    (("stats", "--db", "nowhere/missing.db"), 2),  # a read command on a missing store
    (("ingest", "absent.jsonl"), 2),  # the source cannot be read: bad input, like a bad setting
    (("train", "--mode", "headz"), 2),  # a bad setting flag: refused by the loader before any work
    (("score", "--model", "rm-nope"), 2),
    (("--config", "bad.toml", "sync"), 2),  # a config error before any work
    (("--debug", "simulate", "pairs.jsonl", "--out", "sim"), 1),  # an error the command reports itself
]


def _run(cwd: Path, args: tuple[str, ...], runner: str) -> subprocess.CompletedProcess[str]:
    if runner == "subprocess":
        return prefloop_subprocess(cwd, *args)
    return _in_process(cwd, list(args), clean_env())


def _session(cwd: Path, runner: str) -> list[tuple[int, str, str]]:
    cwd.mkdir()
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3)]
    (cwd / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (cwd / "bad.toml").write_text("[acquisition]\nqueue_size = -5\n")
    out = []
    for args, _ in CASES:
        proc = _run(cwd, args, runner)
        stdout = re.sub(r'"ts": "[^"]+"', '"ts": "T"', proc.stdout)  # sync's JSON lines carry the time
        out.append((proc.returncode, stdout, proc.stderr.replace(str(cwd), "CWD")))
    return out


@pytest.mark.slow  # nine real subprocesses (~9 s): CI runs it; the fast local loop trusts it
def test_both_runners_give_the_same_code_stdout_and_stderr(tmp_path: Path) -> None:
    child = _session(tmp_path / "child", "subprocess")
    here = _session(tmp_path / "here", "in-process")
    for (args, code), sub, inp in zip(CASES, child, here, strict=True):
        assert sub[0] == inp[0] == code, (args, sub, inp)
        assert sub[1] == inp[1], args
        assert sub[2] == inp[2], args
