"""A wheel install (not editable) finds its migrations and templates and creates a store."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

CHECK = """
import json, sqlite3, sys
from pathlib import Path
import prefloop
from prefloop.store.db import init_db, migrations_dir
from prefloop.backends.label_studio import DEFAULT_TEMPLATE
from prefloop.backends.argilla_dataset import load_template
revision = init_db("sqlite:///" + sys.argv[1])
tables = {r[0] for r in sqlite3.connect(sys.argv[1]).execute("select name from sqlite_master where type='table'")}
print(json.dumps({
    "package": prefloop.__file__, "migrations": str(migrations_dir()), "revision": revision,
    "tables": sorted(tables), "ls_template": str(DEFAULT_TEMPLATE), "ls_exists": DEFAULT_TEMPLATE.exists(),
    "argilla_fields": [f["name"] for f in load_template()["fields"]],
}))
"""


def test_wheel_install_creates_a_store_from_packaged_migrations(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("prefloop-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)  # dependencies come from this interpreter
    py = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    work = tmp_path / "elsewhere"  # not the checkout: nothing may be read from it
    work.mkdir()
    out = subprocess.run([str(py), "-c", CHECK, str(work / "store.db")], cwd=work, check=True,
                         capture_output=True, text=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    site = str(env_dir)
    assert got["package"].startswith(site), got["package"]
    assert got["migrations"].startswith(site) and got["migrations"].endswith("prefloop/_migrations")
    assert got["revision"] and {"pairs", "labels", "model_versions"} <= set(got["tables"])
    assert got["ls_template"].startswith(site) and got["ls_exists"]
    assert "prompt" in got["argilla_fields"]
