"""Moved: ``ModelConfig`` is ``[model]``'s record in ``prefloop.config`` (kept so older imports work)."""

from __future__ import annotations

from prefloop.config.model import ModelConfig, default_backbone

__all__ = ["ModelConfig", "default_backbone"]
