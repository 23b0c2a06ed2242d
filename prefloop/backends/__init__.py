"""Annotation backends: one contract (``base``), a registry of lazily imported classes."""

from __future__ import annotations

import importlib

from prefloop.backends.base import (
    AnnotationBackend,
    BackendAuthError,
    BackendError,
    BackendSettings,
    BackendUnreachable,
    Health,
    presentation_swapped,
)

__all__ = [
    "REGISTRY",
    "AnnotationBackend",
    "BackendAuthError",
    "BackendError",
    "BackendSettings",
    "BackendUnreachable",
    "Health",
    "get_backend_class",
    "make_backend",
    "presentation_swapped",
]

# name -> (module, class, pip extra that provides its SDK)
REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "simulated": ("prefloop.backends.simulated", "SimulatedBackend", None),
    "label_studio": ("prefloop.backends.label_studio", "LabelStudioBackend", "label-studio"),
    "argilla": ("prefloop.backends.argilla", "ArgillaBackend", "argilla"),
}


def get_backend_class(name: str) -> type[AnnotationBackend]:
    """Import a backend class by registry name, with an install hint if its SDK is missing."""
    key = name.replace("-", "_").lower()
    if key not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise BackendError(f"unknown backend {name!r}; known backends: {known}")
    module_name, class_name, extra = REGISTRY[key]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'prefloop[{extra}]'" if extra else "reinstall prefloop"
        raise BackendError(f"backend {name!r} needs a package that is missing ({exc.name}): {hint}") from exc
    cls: type[AnnotationBackend] = getattr(module, class_name)
    return cls


def make_backend(name: str, settings: BackendSettings) -> AnnotationBackend:
    return get_backend_class(name)(settings)
