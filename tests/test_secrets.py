"""No secret on screen: an API key and a URL password given to prefloop never appear in its output.

``tests/clirun.prefloop`` checks this for every CLI run of the suite (the secrets in the
environment and in prefloop.toml); the runs here are the ones most likely to leak: a server
URL with credentials in every message that names the server, a server that echoes the key in
its error, a ``--debug`` traceback, ``config show``, and the files a run writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prefloop.redact import mask_url, redact, register_secret
from tests.clirun import clean_env, prefloop, secrets_of
from tests.loop.fake_label_studio import FakeLabelStudio

KEY = "ls-secret-key-7d41c9e2"
PASSWORD = "url-password-93ab5f"


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[FakeLabelStudio]:
    fake = FakeLabelStudio("secrets", **getattr(request, "param", {}))
    yield fake
    fake.stop()


def _env(url: str) -> dict[str, str]:
    with_password = url.replace("http://", f"http://admin:{PASSWORD}@")
    return clean_env(LABEL_STUDIO_API_KEY=KEY, LABEL_STUDIO_URL=with_password, PREFLOOP_BACKEND_NAME="label_studio")


def _all_output(tmp_path: Path, runs: list) -> str:
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".log", ".json", ".toml")]
    files = [p.read_text(errors="replace") for p in written]
    return "\n".join([r.stdout + r.stderr for r in runs] + files)


@pytest.mark.parametrize(
    "server",
    [{"version_status": 500, "body_echo": KEY}, {"repeat": "tasks"}],
    ids=["server-echoes-the-key-in-a-500", "server-repeats-a-page"],
    indirect=True,
)
def test_no_secret_in_any_output_of_a_run_with_secrets_set(tmp_path: Path, server: FakeLabelStudio) -> None:
    env = _env(server.url)
    assert secrets_of(env, tmp_path) == [KEY, PASSWORD], "the suite-wide check knows both secrets"
    prefloop(tmp_path, "--db", "store.db", "init", env=env, check=True)
    runs = [
        prefloop(tmp_path, "--db", "store.db", *args, env=env)
        for args in (
            ("config", "show"),
            ("config", "show", "--json"),
            ("sync",),
            ("sync", "--progress"),
            ("--debug", "sync"),
            ("sync", "--dry-run"),
            ("status",),
        )
    ]
    text = _all_output(tmp_path, runs)
    assert KEY not in text and PASSWORD not in text
    assert "admin:***@127.0.0.1" in text, "the server is still named, its password masked"
    assert runs[2].returncode in (1, 3), "the sync failed as the fault says, and said so"
    if server.version_status == 500:
        assert "internal error ***" in runs[2].stdout, "the server's answer is shown with the key masked"
    assert server.hits, "the runs did reach the server"


def test_an_api_key_in_the_file_is_masked_and_warned_about_naming_the_variable(tmp_path: Path) -> None:
    (tmp_path / "prefloop.toml").write_text(f'[backend]\nname = "label_studio"\napi_key = "{KEY}"\n')
    shown = prefloop(tmp_path, "config", "show")
    assert shown.returncode == 0, shown.stderr
    assert "api_key is a secret in a file others may read" in shown.stderr
    assert "set LABEL_STUDIO_API_KEY" in shown.stderr and "remove api_key from the file" in shown.stderr
    assert KEY not in shown.stdout + shown.stderr


def test_redact_masks_urls_dsns_headers_and_registered_secrets() -> None:
    register_secret("registered-secret-42")
    assert mask_url("http://admin:pw123456@host:8080") == "http://admin:***@host:8080"
    assert redact("postgresql+psycopg://u:p%40ss@db:5432/x") == "postgresql+psycopg://u:***@db:5432/x"
    assert redact("Authorization: Token abcdef0123") == "Authorization: Token ***"
    assert redact("{'X-Argilla-Api-Key': 'owner.apikey'}") == "{'X-Argilla-Api-Key': '***'}"
    assert redact("the server said registered-secret-42 is wrong") == "the server said *** is wrong"
    assert redact("http://host:8080/api?page=2 at 12:30") == "http://host:8080/api?page=2 at 12:30"
