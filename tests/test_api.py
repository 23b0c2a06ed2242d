"""The Python API (``prefloop.Loop``): the README's example runs as written, and each method gives
what its command gives for the same store and configuration."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from prefloop.config import LoopConfig, ModelConfig, render_config
from prefloop.errors import ConfigError, StoreMissing
from prefloop.loop.demo import generated_records, write_oracle
from prefloop.store.db import session_scope
from prefloop.store.tasks import acquired_pair_ids
from prefloop.types import PairRecord
from tests.clirun import clean_env, prefloop

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- api-example"


def readme_example() -> str:
    """The python block that follows the README's api-example marker."""
    text = README.read_text(encoding="utf-8")
    assert text.count(MARKER) == 1, "one API example in the README, marked for this test"
    block = re.search(r"```python\n(.*?)```", text[text.index(MARKER) :], re.DOTALL)
    assert block is not None
    return block.group(1)


def _write(path: Path, records: list[PairRecord], labelled: bool) -> None:
    rows = []
    for r in records:
        row = {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b}
        if labelled and r.label is not None:
            row["label"] = r.label.value
        rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n")


def cli_json(cwd: Path, *args: str) -> Any:
    proc = prefloop(cwd, *args, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def plain(data: Any) -> Any:
    """``data`` as its command's ``--json`` prints it (``echo_json``), read back."""
    return json.loads(json.dumps(data, default=str, sort_keys=True))


@contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Run in ``folder``, as the example did: the store and artifacts_dir are relative paths."""
    here = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The README's example run in a folder holding the files it names; its namespace afterwards."""
    folder = tmp_path_factory.mktemp("api")
    records = generated_records(160, seed=3)
    _write(folder / "labelled.jsonl", records[:60], labelled=True)
    _write(folder / "heldout.jsonl", records[60:100], labelled=True)
    _write(folder / "pool.jsonl", records[100:], labelled=False)
    write_oracle(records, folder / "oracle.jsonl")
    namespace: dict[str, Any] = {}
    with inside(folder):
        exec(compile(readme_example(), "README.md (Python API)", "exec"), namespace)  # the example as written
    # the CLI reads the same configuration from a file: the Loop's, as `config show` renders it
    (folder / "prefloop.toml").write_text(render_config(namespace["loop"].config))
    yield folder, namespace


def test_the_readme_example_runs_and_its_results_are_what_it_says(example: tuple[Path, dict[str, Any]]) -> None:
    folder, ns = example
    assert (folder / "notebook.db").exists()
    assert ns["model"].name.startswith("rm-") and ns["model"].n_new == 60
    assert ns["metrics"]["n"] == 40 and 0.0 <= ns["metrics"]["accuracy"] <= 1.0
    assert len(ns["scores"]) == 60 and {"pair_key", "p_a_overall", "reward_prefers"} <= set(ns["scores"].columns)
    picks = ns["picks"]
    assert list(picks["rank"]) == [1, 2, 3, 4, 5] and set(picks["strategy"]) == {"bald"}
    assert list(picks["score"]) == sorted(picks["score"], reverse=True), "best first"
    assert [s["step"] for s in ns["report"].steps] == ["connect", "pull", "train", "score", "push"]
    assert ns["report"].steps[-1]["pushed"] == 10


def test_status_stats_scores_and_eval_are_the_commands_output(example: tuple[Path, dict[str, Any]]) -> None:
    folder, ns = example
    with inside(folder), ns["Loop"]("notebook.db", ns["loop"].config) as loop:
        assert plain(loop.status()) == cli_json(folder, "status", "--json")
        assert plain(loop.stats()) == cli_json(folder, "stats", "--json")
        assert prefloop(folder, "export", "scores.jsonl", "--kind", "scores", env=clean_env()).returncode == 0
        exported = [json.loads(line) for line in (folder / "scores.jsonl").read_text().splitlines()]
        assert plain(list(loop.scores())) == exported
        metrics = cli_json(folder, "eval", "--json")
        assert plain(loop.evaluate()) == metrics
        on_file = loop.evaluate(data="heldout.jsonl")
        assert (on_file["n"], on_file["accuracy"]) == (metrics["n"], metrics["accuracy"]), "the same 40 pairs"


def test_select_is_what_the_next_sync_pushes_and_a_dry_run_is_the_commands(
    example: tuple[Path, dict[str, Any]],
) -> None:
    folder, ns = example
    with inside(folder), ns["Loop"]("notebook.db") as loop:  # ./prefloop.toml: the example's configuration
        assert loop.config.acquisition.strategy == "bald" and loop.config.model.k == 2
        dry = loop.sync(dry_run=True)
        lines = prefloop(folder, "sync", "--dry-run", env=clean_env()).stdout.splitlines()
        assert [{k: v for k, v in json.loads(line).items() if k not in ("ts", "seconds")} for line in lines] == [
            {k: v for k, v in step.items() if k != "seconds"} for step in plain(dry.steps)
        ]
        chosen = loop.select()
        assert len(chosen) == loop.config.acquisition.queue_size
        with session_scope(loop.engine()) as session:
            before = set(acquired_pair_ids(session))
        proc = prefloop(folder, "sync", env=clean_env())
        assert proc.returncode == 0, proc.stdout + proc.stderr
        steps = {step["step"]: step for step in map(json.loads, proc.stdout.splitlines())}
        assert steps["train"].get("skipped"), "no retrain: the sync picks with the model select used"
        with session_scope(loop.engine()) as session:
            pushed = set(acquired_pair_ids(session)) - before
        assert pushed == {row["pair_id"] for row in chosen}


def test_a_bad_setting_is_refused_as_the_command_refuses_it(tmp_path: Path) -> None:
    from prefloop import Loop

    proc = prefloop(tmp_path, "train", "--mode", "heads", "-k", "-3", env=clean_env())
    assert proc.returncode == 2
    command = proc.stderr.strip().removeprefix("Error: ").split(" (from")[0]
    with pytest.raises(ConfigError) as refused:
        Loop(tmp_path / "x.db", model={"k": -3})
    assert str(refused.value) == f"{command} (from flag Loop(model=...))"
    with pytest.raises(ConfigError, match=re.escape(command)):
        Loop(tmp_path / "x.db", model=ModelConfig(k=-3))
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) kk \(did you mean k\?\)"):
        Loop(tmp_path / "x.db", model={"kk": 2})
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) modle \(did you mean model\?\)"):
        Loop(tmp_path / "x.db", modle={"k": 2})
    with pytest.raises(ConfigError, match="strategy 'bald-ish'"):
        Loop(tmp_path / "x.db", LoopConfig(), acquisition={"strategy": "bald-ish"})
    assert not (tmp_path / "x.db").exists(), "a refused configuration opens no store"


def test_settings_layer_as_the_loader_layers_them(tmp_path: Path) -> None:
    from prefloop import Loop

    (tmp_path / "exp.toml").write_text('artifacts_dir = "runs/a"\n[model]\nk = 3\nepochs = 2\n')
    loop = Loop(tmp_path / "x.db", tmp_path / "exp.toml", model={"k": 4})
    assert (loop.config.model.k, loop.config.model.epochs) == (4, 2), "a keyword over the file, the rest kept"
    assert loop.config.source_of("model.k") == "flag Loop(model=...)"
    assert loop.config.model.cache_dir == str(Path("runs/a") / "embedding-cache"), "as a command places it"
    record = Loop(tmp_path / "x.db", tmp_path / "exp.toml", model=ModelConfig(mode="heads"))
    assert (record.config.model.mode, record.config.model.k) == ("heads", ModelConfig().k), "a record is the section"
    with pytest.raises(StoreMissing, match="no store at"):
        record.status()
    assert not (tmp_path / "x.db").exists(), "only init and ingest create a store"


def _python(code: str) -> str:
    env = {**clean_env(), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout


def test_records_without_pandas_say_what_to_install() -> None:
    out = _python(
        "import sys; sys.modules['pandas'] = None\n"
        "from prefloop.loop.api import Records\n"
        "from prefloop.errors import PrefloopError\n"
        "try:\n    Records([{'a': 1}]).to_pandas()\nexcept PrefloopError as e:\n    print(e)\n"
    )
    assert "pip install pandas" in out


def test_importing_the_package_imports_no_torch() -> None:
    out = _python("import sys, prefloop; print('torch' in sys.modules, prefloop.Loop.__module__)")
    assert out.split() == ["False", "prefloop.loop.api"]


def test_a_failed_ingest_into_a_new_path_leaves_no_store_and_the_loop_can_ingest_again(tmp_path: Path) -> None:
    from prefloop import Loop
    from prefloop.errors import PrefloopError

    rows = [{"prompt": f"p{i}", "response_a": f"a{i}", "response_b": f"b{i}", "label": "a"} for i in range(6)]
    lines = [json.dumps(r) for r in rows]
    lines[2] = '{"prompt": "broken'
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "good.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    loop = Loop(tmp_path / "new.db")
    with pytest.raises(PrefloopError) as refused:
        loop.ingest(tmp_path / "bad.jsonl")
    assert "line 3" in str(refused.value)
    assert not list(tmp_path.glob("new.db*")), "a failed ingest into a new path leaves no store"
    report = loop.ingest(tmp_path / "good.jsonl")  # the same Loop opens the store afresh
    assert report.pairs_added == 6 and loop.stats()["pairs"] == 6
