"""Every setting is refused the same way wherever its value comes from: flag, environment, TOML, Python.

The cases are made from the settings' own field metadata (type, bounds, allowed values), not
from a hand list: a setting added tomorrow is tested by the same loop. Each refusal must exit 2
before any work and name the key, the allowed range and where the value came from.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import Field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import click
import pytest

from prefloop.cli import cli
from prefloop.cli.options import SettingOption
from prefloop.config import SECTIONS, LoopConfig, load_config
from prefloop.config.fields import bounds_text, fits, type_hints, type_name
from prefloop.config.load import env_name
from prefloop.config.render import toml_value
from prefloop.errors import ConfigError
from tests.clirun import clean_env, prefloop

TESTED_SECTIONS = ("model", "acquisition", "milestone", "backend")
ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out: list[tuple[tuple[str, ...], click.Command]] = [(path, group)]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _commands(command, (*path, name))
        else:
            out.append(((*path, name), command))
    return out


COMMANDS = _commands(cli)
#: dotted setting → (command path, the flag's first name) for every flag made from a setting
FLAGS: dict[str, tuple[tuple[str, ...], str]] = {
    param.setting_key: (path, param.opts[0])
    for path, command in COMMANDS
    for param in command.params
    if isinstance(param, SettingOption)
}


def bad_values(section: str, spec: Field[Any]) -> list[tuple[str, Any, str]]:
    """(case, value, what the message must say) for every way the field's metadata says a value is wrong."""
    hint = type_hints(SECTIONS[section])[spec.name]
    whole = fits(1, hint) and not fits(0.5, hint)
    step = 1 if whole else 0.5
    out: list[tuple[str, Any, str]] = []
    for op, edge in (("ge", -step), ("gt", 0), ("le", step), ("lt", 0)):
        if op in spec.metadata:
            out.append((op, spec.metadata[op] + edge, f"must be {bounds_text(spec.metadata)}"))
    literals = [h for h in (hint, *get_args(hint)) if get_origin(h) is Literal]
    if literals:
        out.append(("choice", "no-such-value", f"must be {type_name(hint)}"))
    if fits(1, hint) or fits(0.5, hint) or hint is bool:
        out.append(("type", "abc", f"must be {type_name(hint)}"))
    elif not fits("x", hint):
        out.append(("type", "x", f"must be {type_name(hint)}"))  # a list or a table given as text
    else:
        out.append(("type", 5, f"must be {type_name(hint)}"))  # a number where text belongs
    return out


CASES = [
    pytest.param(section, spec.name, value, expected, id=f"{section}.{spec.name}-{case}")
    for section in TESTED_SECTIONS
    for spec in fields(SECTIONS[section])
    if "help" in spec.metadata
    for case, value, expected in bad_values(section, spec)
]


def _expected(section: str, name: str, value: Any, says: str) -> str:
    return f"[{section}]: {name} {says}, got {value!r}"


def _refused(proc: subprocess.CompletedProcess[str], message: str, source: str, cwd: Path, files: list[str]) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert message in out and f"(from {source}" in out, (message, source, out)
    assert "Traceback" not in out
    assert sorted(p.name for p in cwd.iterdir()) == files, "refused before any work: nothing written"


@pytest.mark.parametrize(("section", "name", "value", "says"), CASES)
def test_a_bad_value_is_refused_the_same_way_from_every_source(
    tmp_path: Path, section: str, name: str, value: Any, says: str
) -> None:
    message = _expected(section, name, value, says)
    hint = type_hints(SECTIONS[section])[name]
    # Python
    with pytest.raises(ConfigError) as caught:
        SECTIONS[section](**{name: value})
    assert message in str(caught.value)
    # TOML, through a command that would create a store
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    (tmp_path / "prefloop.toml").write_text(f"[{section}]\n{name} = {toml_value(value)}\n")
    proc = prefloop(tmp_path, "ingest", "pairs.jsonl")
    _refused(proc, message, "file prefloop.toml", tmp_path, ["pairs.jsonl", "prefloop.toml"])
    (tmp_path / "prefloop.toml").unlink()
    text = value if isinstance(value, str) else toml_value(value)
    if isinstance(value, str) or not fits("x", hint):  # a number where text belongs cannot be written as text
        # the environment
        var = env_name(f"{section}.{name}")
        proc = prefloop(tmp_path, "ingest", "pairs.jsonl", env=clean_env(**{var: text}))
        _refused(proc, message, f"env {var}", tmp_path, ["pairs.jsonl"])
        # a flag, where one sets this setting
        if f"{section}.{name}" in FLAGS and hint is not bool:
            path, flag = FLAGS[f"{section}.{name}"]
            proc = prefloop(tmp_path, *path, flag, text)
            _refused(proc, message, "flag ", tmp_path, ["pairs.jsonl"])
            assert flag in proc.stdout + proc.stderr, "the flag is named"


def test_the_cases_cover_every_setting_and_every_flag() -> None:
    """The parametrisation above is made from the fields: each tested setting has at least one case."""
    covered = {p.values[0] + "." + p.values[1] for p in CASES}
    settings = {f"{s}.{f.name}" for s in TESTED_SECTIONS for f in fields(SECTIONS[s]) if "help" in f.metadata}
    assert covered == settings
    assert {"model.k", "model.epochs", "model.max_length", "model.mode", "backend.name"} <= set(FLAGS)


@pytest.mark.parametrize("section", ["", *SECTIONS])
def test_an_unknown_key_is_refused_with_the_nearest_name(tmp_path: Path, section: str) -> None:
    owner = SECTIONS[section] if section else LoopConfig
    name = next(f.name for f in fields(owner) if "help" in f.metadata and f.name not in SECTIONS)
    typo = name + name[-1]
    said = f"unknown setting(s) {typo} (did you mean {name}?)"
    (tmp_path / "prefloop.toml").write_text(f"[{section}]\n{typo} = 1\n" if section else f"{typo} = 1\n")
    proc = prefloop(tmp_path, "config", "show")
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr
    assert "prefloop.toml" in proc.stderr, "the file is named"
    (tmp_path / "prefloop.toml").unlink()
    if section:
        var = f"PREFLOOP_{section.upper()}_{typo.upper()}"
        proc = prefloop(tmp_path, "config", "show", env=clean_env(**{var: "1"}))
        assert proc.returncode == 2 and said in proc.stderr and var in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "args", [("--epochs", "0"), ("--max-length", "4"), ("-k", "-3")], ids=["epochs", "max-length", "k"]
)
def test_train_refuses_an_out_of_range_flag_before_any_work(tmp_path: Path, args: tuple[str, str]) -> None:
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(12)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert prefloop(tmp_path, "ingest", "pairs.jsonl").returncode == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = prefloop(tmp_path, "train", "--mode", "heads", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    flag, value = args
    key = {"--epochs": "epochs", "--max-length": "max_length", "-k": "k"}[flag]
    low = {"epochs": 1, "max_length": 8, "k": 1}[key]
    assert f"[model]: {key} must be at least {low}, got {value}" in proc.stderr and flag in proc.stderr
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "no model, no artifacts"
    status = json.loads(prefloop(tmp_path, "status", "--json").stdout)
    assert status["current_model"] is None


def test_every_command_and_option_has_help_and_every_command_an_example() -> None:
    for path, command in COMMANDS:
        where = " ".join(("prefloop", *path))
        assert (command.help or "").strip(), f"{where} has no help"
        assert "Example" in (command.help or ""), f"{where}'s help has no example"
        for param in command.get_params(click.Context(command)):
            if isinstance(param, click.Option):
                assert (param.help or "").strip(), f"{where} {'/'.join(param.opts)} has no help"


def test_a_setting_flag_shows_the_fields_help_and_range(tmp_path: Path) -> None:
    proc = prefloop(tmp_path, "train", "--help")
    text = " ".join(proc.stdout.split())
    assert "Ensemble size: members each give P(a≻b)" in text and "at least 1; default 5" in text
    assert "PREFLOOP_MODEL_K" in text and "[model] k" in text


@pytest.mark.parametrize("source", ["file", "env", "flag"])
def test_a_name_the_registries_do_not_know_is_refused_from_every_source(tmp_path: Path, source: str) -> None:
    env = clean_env(PREFLOOP_BACKEND_NAME="labelstudio") if source == "env" else clean_env()
    if source == "file":
        (tmp_path / "prefloop.toml").write_text('[backend]\nname = "labelstudio"\n')
    args = ("sync", "--backend", "labelstudio") if source == "flag" else ("sync",)
    proc = prefloop(tmp_path, *args, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["type"] == "ConfigError" and last["exit_code"] == 2
    assert "[backend]: name 'labelstudio' is not a backend (did you mean label_studio?)" in last["message"]
    named = {"file": "file prefloop.toml", "env": "env PREFLOOP_BACKEND_NAME", "flag": "flag --backend"}[source]
    assert f"(from {named})" in last["message"]
    assert "prefloop.db" not in [p.name for p in tmp_path.iterdir()], "refused before any work"


def test_precedence_defaults_file_environment_flags(tmp_path: Path) -> None:
    (tmp_path / "prefloop.toml").write_text("[model]\nk = 3\nepochs = 4\nmode = 'heads'\n")
    config = load_config(
        str(tmp_path / "prefloop.toml"),
        overrides={"model.k": 5},
        flags={"model.k": "-k"},
        environ={"PREFLOOP_MODEL_K": "4", "PREFLOOP_MODEL_EPOCHS": "6"},
    )
    assert (config.model.k, config.model.epochs, config.model.mode, config.model.lr) == (5, 6, "heads", None)
    assert config.sources["model.k"] == "flag -k"
    assert config.sources["model.epochs"] == "env PREFLOOP_MODEL_EPOCHS"
    assert config.sources["model.mode"].startswith("file ") and "model.lr" not in config.sources
    listed = load_config(environ={"PREFLOOP_BACKEND_DIMENSIONS": '["helpful", "harmless"]'})
    assert listed.backend.dimensions == ["helpful", "harmless"], "a list in the environment is written as in TOML"


def test_the_model_aggregate_key_still_works_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "prefloop.toml").write_text('[model]\naggregate = "majority"\nk = 2\n')
    with pytest.warns(FutureWarning, match=r"\[model\] aggregate has moved to \[annotators\] aggregate"):
        config = load_config(str(tmp_path / "prefloop.toml"))
    assert config.annotators.aggregate == "majority" and config.model.k == 2
    proc = prefloop(tmp_path, "config", "show")
    assert proc.returncode == 0
    assert "Warning: " in proc.stderr and "[model] aggregate has moved" in proc.stderr
    assert 'aggregate = "majority"  # file prefloop.toml ([model] aggregate)' in proc.stdout


def test_strategy_parameters_come_from_the_file_and_go_to_the_layer_that_takes_them(tmp_path: Path) -> None:
    from prefloop.acquisition import configured_strategy
    from prefloop.loop.settings import load_settings

    path = tmp_path / "prefloop.toml"
    path.write_text('[acquisition]\nstrategy = "diverse:epig"\nn_targets = 7\nshortlist = 30\n')
    acq = load_settings(str(path)).acquisition
    strategy = configured_strategy(acq.strategy, acq.strategy_params(), acq.max_per_prompt)
    assert strategy.params["shortlist"] == 30 and strategy.params["inner_params"] == {"n_targets": 7}
    path.write_text('[acquisition]\nstrategy = "bald"\nn_targets = 7\n')
    proc = prefloop(tmp_path, "config", "show")
    assert proc.returncode == 2
    assert "[acquisition]: strategy 'bald': strategy 'bald' got unknown parameter(s) n_targets" in proc.stderr


def test_train_config_and_annotators_config_read_the_file_they_name(tmp_path: Path) -> None:
    (tmp_path / "other.toml").write_text("[model]\nk = 0\n[annotators]\ngold_min_labels = 0\n")
    for command in ("train", "annotators"):
        proc = prefloop(tmp_path, command, "--config", "other.toml")
        assert proc.returncode == 2, proc.stderr
        assert "(from file other.toml)" in proc.stderr and "must be at least 1, got 0" in proc.stderr


def test_config_imports_nothing_above_it() -> None:
    allowed = ("prefloop.config", "prefloop.errors", "prefloop.types", "prefloop.redact")
    for path in sorted((ROOT / "prefloop" / "config").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.startswith("prefloop"):
                    assert name.startswith(allowed), f"{path.name} imports {name}"


@pytest.mark.parametrize("module", ["prefloop", "prefloop.cli"])
def test_python_dash_m_runs_the_command(tmp_path: Path, module: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module, "config", "show", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(PREFLOOP_MODEL_K="3"),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"]["k"] == 3
