"""A wheel install (not editable) finds its migrations and templates and creates a store."""

from __future__ import annotations

import json
import os
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
from prefloop.resources import demo_sample
revision = init_db("sqlite:///" + sys.argv[1])
tables = {r[0] for r in sqlite3.connect(sys.argv[1]).execute("select name from sqlite_master where type='table'")}
print(json.dumps({
    "package": prefloop.__file__, "migrations": str(migrations_dir()), "revision": revision,
    "tables": sorted(tables), "ls_template": str(DEFAULT_TEMPLATE), "ls_exists": DEFAULT_TEMPLATE.exists(),
    "argilla_fields": [f["name"] for f in load_template()["fields"]],
    "demo_sample": str(demo_sample()), "demo_sample_bytes": demo_sample().stat().st_size,
}))
"""


def venv_seeing_this_environment(env_dir: Path) -> Path:
    """A fresh venv whose dependencies resolve from the RUNNING environment, whatever it is.

    ``system_site_packages=True`` would expose the *base* interpreter's packages, not those of a
    virtualenv or conda env the suite runs in. Instead a ``.pth`` file appends this process's
    import path (minus the checkout and anything editable-installed from it), so the wheel
    installed into the venv is found first and its dependencies come from here, offline.
    """
    venv.create(env_dir, system_site_packages=False, with_pip=False)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    inherited = [p for p in sys.path if p and Path(p).is_dir() and not Path(p).resolve().is_relative_to(ROOT)]
    (Path(purelib) / "zz_outer_environment.pth").write_text("\n".join(inherited) + "\n")
    return py


def test_wheel_install_creates_a_store_from_packaged_migrations(tmp_path: Path) -> None:
    # the installed package only: a PYTHONPATH naming a checkout (as in a worktree) would shadow it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        env=env,
    )
    (wheel,) = wheels.glob("prefloop-*.whl")
    env_dir = tmp_path / "venv"
    py = venv_seeing_this_environment(env_dir)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        env=env,
    )
    work = tmp_path / "elsewhere"  # not the checkout: nothing may be read from it
    work.mkdir()
    out = subprocess.run(
        [str(py), "-c", CHECK, str(work / "store.db")], cwd=work, check=True, capture_output=True, text=True, env=env
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    site = str(env_dir)
    assert got["package"].startswith(site), got["package"]
    assert got["migrations"].startswith(site) and got["migrations"].endswith("prefloop/_migrations")
    assert got["revision"] and {"pairs", "labels", "model_versions"} <= set(got["tables"])
    assert got["ls_template"].startswith(site) and got["ls_exists"]
    assert "prompt" in got["argilla_fields"]
    assert got["demo_sample"].startswith(site) and got["demo_sample_bytes"] > 100_000
    # the console script (prefloop = prefloop.cli:main) and python -m prefloop run the installed package
    for command in ([str(env_dir / "bin" / "prefloop")], [str(py), "-m", "prefloop"]):
        shown = subprocess.run(
            [*command, "config", "show", "--json"], cwd=work, capture_output=True, text=True, check=False, env=env
        )
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["model"]["mode"] == "adapted"
