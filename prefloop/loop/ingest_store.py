"""Ingest a file into the configured store, creating it when it does not exist yet: one path for
``prefloop ingest`` (``cli/data.py``) and ``Loop.ingest`` (``api.py``).

A mistyped path is refused before any store is made; an ingest that fails into a SQLite path
that did not exist before leaves no file behind (``kept_only_if_filled``); an existing store is
left to the ingest's own single transaction, so it never holds half a file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from prefloop.data.fields import ShapeOptions
from prefloop.data.ingest import IngestReport, ingest
from prefloop.data.readers import require_source
from prefloop.store.db import kept_only_if_filled

__all__ = ["ingest_into_store"]


def ingest_into_store(
    url: str,
    open_engine: Callable[[], Engine],
    source: str,
    *,
    file_type: str | None,
    opts: ShapeOptions,
    hub: bool = False,
    on_failure: Callable[[], None] | None = None,
    **options: Any,
) -> IngestReport:
    """Read ``source`` into the store at ``url`` (``open_engine`` opens it, creating it if needed).

    ``options`` are ``prefloop.data.ingest.ingest``'s keywords (split, skip_invalid, rejects_path,
    hf_split, encoding, progress). ``on_failure`` runs before a removed new store's file is
    deleted, so a caller can close the engine it holds on it.
    """
    require_source(source, file_type, hub)  # a mistyped path creates no store
    with kept_only_if_filled(url):  # a failed ingest into a new path leaves no store
        try:
            return ingest(open_engine(), source, fmt=file_type, opts=opts, hub=hub, **options)
        except BaseException:
            if on_failure is not None:
                on_failure()
            raise
