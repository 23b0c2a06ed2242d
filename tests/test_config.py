"""One effective configuration: flags > environment > prefloop.toml > defaults, checked when it is loaded."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from prefloop.config import SettingDeprecationWarning, load_config
from prefloop.errors import ConfigError
from prefloop.loop.settings import load_settings
from tests.clirun import SECRET_VARS, clean_env, prefloop


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


BAD_FILES = [
    ('[model]\nmdoe = "finetune"\n', "unknown setting(s) mdoe (did you mean mode?)"),
    ('[model]\nk = "two"\n', "[model]: k must be int, got 'two'"),
    ('[model]\nmode = "headz"\n', "[model]: mode must be 'heads' | 'finetune'"),
    ("[model]\nk = 0\n", "[model]: k must be at least 1, got 0"),
    ("[model]\nval_fraction = 1.5\n", "val_fraction must be at least 0 and below 1, got 1.5"),
    ('[model]\naggregate = "mean"\n', "aggregate must be 'none' | 'majority' | 'dawid-skene'"),
    ('[acquisition]\nstrategy = "diverse:bold"\n', "[acquisition]: strategy 'diverse:bold': unknown strategy 'bold'"),
    ("[acquisition]\nqueue_size = -5\n", "[acquisition]: queue_size must be at least 1, got -5"),
    ("[acquisition]\nqueue_size = true\n", "queue_size must be int, got True"),
    ("[acquisition]\nmax_per_prompt = 0\n", "max_per_prompt must be at least 1"),
    ("[milestone]\nevery = 0\n", "[milestone]: every must be at least 1, got 0"),
    ("[milestone]\nmin_interval_s = -1\n", "min_interval_s must be at least 0"),
    ('[backend]\nname = "labelstudio"\n', "name 'labelstudio' is not a backend (did you mean label_studio?); known"),
    ('[backend]\nurll = "http://x"\n', "[backend]: unknown setting(s) urll (did you mean url?)"),
    ("[backend]\nretries = -1\n", "retries must be at least 0"),
    ("[backend]\nurl = 5\n", "[backend]: url must be str or unset, got 5"),
    ('[backend]\ndimensions = "helpful"\n', "dimensions must be list"),
    ("[annotators]\nmin_gold_accuracy = 2.0\n", "min_gold_accuracy must be at least 0 and at most 1, got 2.0"),
    ('dbb = "x.db"\n', "unknown setting(s) dbb (did you mean db?)"),
    ('backend = "simulated"\n', "backend must be a [backend] table"),
    ('[acquisition\nstrategy = "bald"\n', "invalid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES, ids=[m[:40] for _, m in BAD_FILES])
def test_a_bad_setting_fails_when_the_file_is_loaded(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prefloop.toml"
    path.write_text(text)
    moved = pytest.warns(SettingDeprecationWarning) if "[model]\naggregate" in text else contextlib.nullcontext()
    with moved, pytest.raises(ConfigError) as caught:
        load_settings(str(path))  # the file's checks, then the names the registries know
    assert message in str(caught.value)


@pytest.mark.parametrize("command", [("sync",), ("train",), ("status",), ("stats",), ("config", "show")])
def test_every_command_refuses_a_bad_file_before_any_work(tmp_path: Path, command: tuple[str, ...]) -> None:
    assert prefloop(tmp_path, "init").returncode == 0
    store = digest(tmp_path / "prefloop.db")
    (tmp_path / "prefloop.toml").write_text('[acquisition]\nstrategy = "diverse:bold"\n[model]\nk = 3\n')
    proc = prefloop(tmp_path, *command)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "strategy 'diverse:bold'" in out and "Traceback" not in out
    if command == ("sync",):
        last = json.loads(proc.stdout.splitlines()[-1])
        assert last["step"] == "error" and last["type"] == "ConfigError" and last["exit_code"] == 2
    assert digest(tmp_path / "prefloop.db") == store
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefloop.db", "prefloop.toml"], "nothing written"


def test_precedence_flag_then_env_then_file_then_default(tmp_path: Path) -> None:
    (tmp_path / "prefloop.toml").write_text('db = "file.db"\n[acquisition]\nqueue_size = 7\n')
    shown = prefloop(tmp_path, "config", "show", "--json", env=clean_env(PREFLOOP_DB_URL="env.db"))
    assert json.loads(shown.stdout)["db"] == "env.db"
    shown = prefloop(tmp_path, "config", "show", "--db", "flag.db", env=clean_env(PREFLOOP_DB_URL="env.db")).stdout
    assert 'db = "flag.db"  # flag --db' in shown
    shown = prefloop(tmp_path, "config", "show").stdout
    assert 'db = "file.db"  # file prefloop.toml' in shown
    assert "queue_size = 7  # file prefloop.toml" in shown and "every = 50  # default" in shown
    assert tomllib.loads(shown)["acquisition"]["queue_size"] == 7, "config show prints valid TOML"


def test_every_command_uses_the_db_of_prefloop_toml(tmp_path: Path) -> None:
    (tmp_path / "prefloop.toml").write_text('db = "stores/team.db"\n')
    (tmp_path / "stores").mkdir()
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "good", "rejected": "bad"}) + "\n")
    assert prefloop(tmp_path, "init").returncode == 0
    ingest = prefloop(tmp_path, "ingest", "pairs.jsonl")
    assert ingest.returncode == 0 and f"store: {tmp_path / 'stores' / 'team.db'}" in ingest.stderr
    for command in (("stats", "--json"), ("status", "--json"), ("export", "out.jsonl")):
        proc = prefloop(tmp_path, *command)
        assert proc.returncode == 0, proc.stderr
        assert f"store: {tmp_path / 'stores' / 'team.db'}" in proc.stderr, command
    assert json.loads(prefloop(tmp_path, "stats", "--json").stdout)["pairs"] == 1
    assert not (tmp_path / "prefloop.db").exists(), "no second store from one README"


def test_config_from_env_and_global_options_after_the_subcommand(tmp_path: Path) -> None:
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / "loop.toml").write_text(f'db = "{tmp_path / "from-env.db"}"\n')
    env = clean_env(PREFLOOP_CONFIG=str(elsewhere / "loop.toml"))
    assert prefloop(tmp_path, "init", env=env).returncode == 0
    assert (tmp_path / "from-env.db").exists()
    other = tmp_path / "other.toml"
    other.write_text(f'db = "{tmp_path / "from-flag.db"}"\n')
    assert prefloop(tmp_path, "init", "--config", str(other)).returncode == 0, "--config after the subcommand"
    assert (tmp_path / "from-flag.db").exists()
    proc = prefloop(tmp_path, "stats", "--json", "--db", str(tmp_path / "from-flag.db"))
    assert proc.returncode == 0 and json.loads(proc.stdout)["pairs"] == 0, "--db after the subcommand"
    missing = prefloop(tmp_path, "stats", env=clean_env(PREFLOOP_CONFIG=str(tmp_path / "nope.toml")))
    assert missing.returncode == 2 and "config file" in missing.stderr and "PREFLOOP_CONFIG" in missing.stderr


def test_config_init_writes_a_commented_starter_that_loads(tmp_path: Path) -> None:
    proc = prefloop(tmp_path, "config", "init")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "prefloop.toml").read_text()
    assert "# queue_size = 50" in text and "# Pending tasks kept at the backend" in text and "[model]" in text
    assert load_config(str(tmp_path / "prefloop.toml")).acquisition.queue_size == 50
    (tmp_path / "prefloop.toml").write_text(text.replace("# queue_size = 50", "queue_size = 12"))
    assert load_config(str(tmp_path / "prefloop.toml")).acquisition.queue_size == 12, "uncommenting a line works"
    again = prefloop(tmp_path, "config", "init")
    assert again.returncode == 2 and "exists; pass --force" in again.stderr
    assert "queue_size = 12" in (tmp_path / "prefloop.toml").read_text(), "not overwritten"
    assert prefloop(tmp_path, "config", "init", "--force").returncode == 0


def test_config_show_masks_the_password_of_a_database_url(tmp_path: Path) -> None:
    (tmp_path / "prefloop.toml").write_text(
        'db = "postgresql://loop:hunter2@db.internal/prefs"\n[backend]\nextra = { token = "abc123", workspace = "w" }\n'
    )
    out = prefloop(tmp_path, "config", "show").stdout
    assert "hunter2" not in out and "abc123" not in out
    assert "postgresql://loop:***@db.internal/prefs" in out and 'workspace = "w"' in out


@pytest.mark.parametrize(
    ("backend", "variable"), [("label_studio", "LABEL_STUDIO_API_KEY"), ("argilla", "ARGILLA_API_KEY")]
)
def test_a_missing_api_key_is_a_config_error_naming_the_documented_variable(
    tmp_path: Path, backend: str, variable: str
) -> None:
    assert prefloop(tmp_path, "init").returncode == 0
    # retries = 0: the closed port at the end answers at once instead of after the backoffs
    (tmp_path / "prefloop.toml").write_text(f'[backend]\nname = "{backend}"\nurl = "http://127.0.0.1:9"\nretries = 0\n')
    proc = prefloop(tmp_path, "sync")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["type"] == "ConfigError" and variable in last["message"]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"# api_key is not set: sync needs {variable}" in prefloop(tmp_path, "config", "show").stdout
    ok = prefloop(tmp_path, "sync", "--dry-run", env=clean_env(**{variable: "k"}))
    assert ok.returncode == 3, "with the key the config passes and the (absent) server is what fails"


def test_one_backend_record_every_backend_setting_can_be_set_from_the_file(tmp_path: Path) -> None:
    from prefloop.backends import BackendSettings
    from prefloop.config import backend_settings

    path = tmp_path / "prefloop.toml"
    path.write_text(
        "[backend]\nbatch_size = 7\noverlap_s = 1.5\nrandomize_order = false\norder_seed = 3\n"
        'extra = { workspace = "w" }\n'
    )
    config = load_config(str(path))
    assert type(config.backend) is BackendSettings, "[backend] is the record every backend reads"
    settings = backend_settings(config)
    chosen = (settings.batch_size, settings.overlap_s, settings.randomize_order, settings.order_seed)
    assert chosen == (7, 1.5, False, 3)
    settings.extra["workspace"] = "changed"
    assert config.backend.extra == {"workspace": "w"}, "the settings are a copy"
    assert settings.url == str(Path("prefloop-artifacts") / "simulated"), "the simulator's state under artifacts_dir"
    assert config.backend.url is None, "the configuration itself is left as set"


def test_the_backend_flag_picks_that_backends_key_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--backend argilla` with ARGILLA_API_KEY set and no [backend] in the file: the key is found."""
    monkeypatch.chdir(tmp_path)
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARGILLA_API_KEY", "key-from-env")
    config = load_config(overrides={"backend.name": "argilla"}, require_secrets=True)
    assert config.backend.api_key == "key-from-env" and config.sources["backend.api_key"] == "env ARGILLA_API_KEY"
