"""prefloop: spend a small annotation budget where it teaches a reward model most.

``prefloop.Loop`` is the Python API (``prefloop/loop/api.py``); it is imported on first use,
so ``import prefloop`` stays cheap (no torch, no SQLAlchemy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefloop.loop.api import Loop

__all__ = ["Loop", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Loop":
        from prefloop.loop.api import Loop

        return Loop
    raise AttributeError(f"module 'prefloop' has no attribute {name!r}")
