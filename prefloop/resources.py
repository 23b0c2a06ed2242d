"""Where the files prefloop ships beside its code live: Alembic migrations and annotation templates.

A checkout keeps them at the top level (``migrations/``, ``templates/``); a wheel carries
copies inside the package as ``prefloop/_migrations`` and ``prefloop/_templates`` (``setup.py``
puts them there), so a non-editable install finds them too.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["demo_sample", "shipped_folder"]

_PACKAGE = Path(__file__).resolve().parent


def shipped_folder(name: str) -> Path:
    """``name`` ('migrations' or 'templates'): the checkout's folder, else the wheel's copy."""
    for candidate in (_PACKAGE.parent / name, _PACKAGE / f"_{name}"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"prefloop's {name} folder is missing from this install; reinstall prefloop")


def demo_sample() -> Path:
    """The packaged real-data sample (2,500 HH-RLHF pairs, MIT; see ``demo_data/PROVENANCE.md``)."""
    path = _PACKAGE / "demo_data" / "hh_rlhf_sample.jsonl.gz"
    if not path.exists():
        raise FileNotFoundError(f"prefloop's demo sample is missing at {path}; reinstall prefloop")
    return path
