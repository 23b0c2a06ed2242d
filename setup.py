"""Build hook: ship the top-level ``migrations/`` and ``templates/`` inside the wheel.

The checkout keeps them at the top level (the house layout); a wheel has no top level, so
``build_py`` copies them to ``prefloop/_migrations`` and ``prefloop/_templates``, where
``prefloop.resources.shipped_folder`` looks when the checkout's folders are absent.
Everything else about the package is in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("migrations", "templates")


class BuildWithShippedFolders(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the checkout's folders
            return
        for name in SHIPPED:
            dest = Path(self.build_lib) / "prefloop" / f"_{name}"
            shutil.copytree(name, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithShippedFolders})
