"""The Python API: ``prefloop.Loop``, the library calls the CLI makes, from a notebook or a script.

One ``Loop`` is one store and one configuration, resolved by the loader every command uses
(defaults < ``prefloop.toml`` < environment < the keyword settings given here) and checked
the same way, so a bad value raises the same ``ConfigError`` a command prints. Each method
calls the one library function its command calls and returns plain records: dataclasses, dicts,
or ``Records`` (a list of dicts with ``to_pandas()``).

    from prefloop import Loop
    from prefloop.config import ModelConfig

    with Loop("prefs.db", model=ModelConfig(mode="heads", k=2)) as loop:
        loop.ingest("pairs.jsonl")
        print(loop.train().name, loop.evaluate()["accuracy"])
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefloop.config import SECTIONS, LoopConfig, ModelConfig, check_secrets
from prefloop.config.fields import unknown_keys
from prefloop.errors import ConfigError, PrefloopError
from prefloop.loop.settings import check_config, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from prefloop.data.fields import ShapeOptions
    from prefloop.data.ingest import IngestReport
    from prefloop.loop.reward import TrainResult
    from prefloop.loop.sync_report import SyncReport

__all__ = ["Loop", "Records", "ScoreRun"]


class Records(list[dict[str, Any]]):
    """Rows as plain dicts (one per pair, label, ...); ``to_pandas()`` makes a DataFrame of them."""

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` of the rows (pandas is not a prefloop dependency: ``pip install pandas``)."""
        try:
            pandas = importlib.import_module("pandas")
        except ImportError:
            raise PrefloopError(
                "to_pandas() needs pandas, which prefloop does not install: pip install pandas "
                "(the records themselves are plain dicts)"
            ) from None
        return pandas.DataFrame(list(self))


@dataclasses.dataclass
class ScoreRun:
    """What ``Loop.score`` did: the model that scored and how many pairs it scored now."""

    model: str
    scored: int


def _top_level() -> list[str]:
    return [f.name for f in dataclasses.fields(LoopConfig) if "help" in f.metadata and f.name not in SECTIONS]


def _section_values(name: str, value: Any) -> dict[str, Any]:
    """One ``Loop(section=...)`` argument as that section's settings: a record sets every field it
    does not leave None (None falls through to the file and the environment), a dict the keys it names."""
    cls = SECTIONS[name]
    known = {f.name for f in dataclasses.fields(cls) if "help" in f.metadata}
    if isinstance(value, cls):
        return {key: getattr(value, key) for key in sorted(known) if getattr(value, key) is not None}
    if isinstance(value, Mapping):
        unknown = set(value) - known
        if unknown:
            raise unknown_keys(name, unknown, known)
        return dict(value)
    raise ConfigError(f"Loop({name}=...): give a {cls.__name__} or a dict of [{name}] settings, not {value!r}")


def _settings_overrides(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``Loop``'s keyword settings as the loader's dotted overrides (``{"model.k": 2, "artifacts_dir": ...}``)."""
    top = _top_level()
    unknown = set(settings) - set(top) - set(SECTIONS)
    if unknown:
        raise unknown_keys("", unknown, [*top, *SECTIONS])
    out: dict[str, Any] = {}
    for name, value in settings.items():
        if name in SECTIONS:
            out.update({f"{name}.{key}": item for key, item in _section_values(name, value).items()})
        else:
            out[name] = value
    return out


def _applied(config: LoopConfig, overrides: Mapping[str, Any]) -> LoopConfig:
    """``config`` with dotted ``overrides``; each changed record is rebuilt, so its checks run again."""
    by_section: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section, _, name = key.rpartition(".")
        by_section.setdefault(section, {})[name] = value
    changes: dict[str, Any] = dict(by_section.pop("", {}))
    for section, values in by_section.items():
        changes[section] = dataclasses.replace(getattr(config, section), **values)
    return dataclasses.replace(config, **changes)


def _resolve_config(config: LoopConfig | str | Path | None, db: str | None, settings: Mapping[str, Any]) -> LoopConfig:
    """The effective configuration of a ``Loop``: a file (or ./prefloop.toml and the environment, as a
    command reads them) or a ``LoopConfig``, with ``db`` and the keyword ``settings`` on top, checked."""
    overrides = _settings_overrides(settings)
    if isinstance(config, LoopConfig):
        return check_config(_applied(config, {**overrides, **({"db": db} if db else {})}))
    if config is not None and not isinstance(config, str | Path):
        raise ConfigError(f"Loop(config=...): a LoopConfig or the path of a prefloop.toml, not {config!r}")
    flags = {key: f"Loop({key.partition('.')[0]}=...)" for key in overrides}
    return load_settings(str(config) if config is not None else None, db=db, overrides=overrides, flags=flags)


def _shape_options(
    fmt: str | None,
    file_type: str | None,
    mapping: Mapping[str, str] | None,
    label_map: Mapping[str, str] | None,
    label_decoder: str | None,
    **more: Any,
) -> tuple[str | None, ShapeOptions]:
    """(file type, ``ShapeOptions``) as ``--format``/``--file-type``/``--map``/``--label-map`` give them."""
    from prefloop.data.fields import reading_shape
    from prefloop.types import Choice

    meanings = None
    if label_map:
        try:
            meanings = {str(raw): Choice(str(meaning).lower()) for raw, meaning in label_map.items()}
        except ValueError:
            raise ConfigError(f"label_map {dict(label_map)!r}: each value means a, b, tie or skip") from None
    mapped = dict(mapping) if mapping else None
    return reading_shape(fmt, file_type, mapping=mapped, label_map=meanings, label_decoder=label_decoder, **more)


class Loop:
    """One store and one configuration: ingest, train, score, evaluate, select and sync from Python.

    ``db`` is the store (a SQLite path or a database URL; default: the configuration's ``db``,
    else ``prefloop.db``). ``config`` is a ``LoopConfig``, or the path of a prefloop.toml (default:
    ./prefloop.toml if present, and the environment, as a command reads them). Keyword settings
    override it: a section's record or a dict of its keys (``model=ModelConfig(mode="heads")``,
    ``acquisition={"queue_size": 20}``) or a top-level key (``artifacts_dir="runs/a"``). A bad
    value raises the ``ConfigError`` the CLI would print; errors are ``PrefloopError``\\ s.

    Only ``init`` and ``ingest`` create a store. Use it as a context manager (or call ``close``)
    to close the store's connections.
    """

    def __init__(
        self, db: str | Path | None = None, config: LoopConfig | str | Path | None = None, **settings: Any
    ) -> None:
        self.config: LoopConfig = _resolve_config(config, str(db) if db is not None else None, settings)
        self._engine: Engine | None = None

    def __repr__(self) -> str:
        from prefloop.store.db import describe_url

        return f"Loop({describe_url(self.config.db_url())})"

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's connections (a later call opens them again)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def engine(self, create: bool = False, migrate: bool = True) -> Engine:
        """The store's engine, opened once (``open_store``: only ``create`` makes a new store)."""
        from prefloop.store.db import open_store

        if self._engine is None:
            self._engine = open_store(self.config.db_url(), create=create, migrate=migrate)
        return self._engine

    # --- data ---------------------------------------------------------------------------------

    def init(self) -> str:
        """Create the store, or upgrade it to the newest schema (``prefloop init``); its schema revision."""
        from prefloop.store.db import current_revision

        return str(current_revision(self.engine(create=True)))

    def ingest(
        self,
        source: str | Path,
        *,
        split: str = "pool",
        format: str | None = None,
        file_type: str | None = None,
        mapping: Mapping[str, str] | None = None,
        label_map: Mapping[str, str] | None = None,
        label_decoder: str | None = None,
        dimension: str | None = None,
        annotator: str | None = None,
        strict: bool = False,
        skip_invalid: bool = False,
        rejects: str | None = None,
        hf_split: str | None = None,
        encoding: str = "utf-8",
        hub: bool = False,
        max_chars: int = 200_000,
        max_pairs_per_prompt: int | None = None,
        progress: bool = False,
    ) -> IngestReport:
        """Read pairs and labels into the store, all or nothing (``prefloop ingest``); the report.

        The keywords are ``ingest``'s options: ``mapping={"prompt": "question"}`` is ``--map``,
        ``label_map={"1": "a", "0": "b"}`` is ``--label-map``; ``split="test"`` holds pairs out.
        """
        from prefloop.loop.ingest_store import ingest_into_store

        if split not in ("pool", "test"):
            raise ConfigError(f"split {split!r}: 'pool' (annotated and trained on) or 'test' (held out)")
        kind, options = _shape_options(
            format,
            file_type,
            mapping,
            label_map,
            label_decoder,
            max_chars=max_chars,
            max_pairs_per_prompt=max_pairs_per_prompt,
            dimension=dimension,
            annotator=annotator,
            strict=strict,
        )
        had_engine = self._engine is not None

        def close_new_engine() -> None:  # the store file may be removed: forget the engine opened on it
            if not had_engine and self._engine is not None:
                self._engine.dispose()
                self._engine = None

        return ingest_into_store(
            self.config.db_url(),
            lambda: self.engine(create=True),
            str(source),
            file_type=kind,
            opts=options,
            hub=hub,
            on_failure=close_new_engine,
            skip_invalid=skip_invalid,
            rejects_path=rejects,
            split=split,
            hf_split=hf_split,
            encoding=encoding,
            progress=progress,
        )

    def stats(self) -> dict[str, Any]:
        """Counts of pairs, labels, annotators and tasks (``prefloop stats --json``)."""
        from prefloop.loop.status import store_report

        return store_report(self.engine())

    def status(self) -> dict[str, Any]:
        """Labels, pending tasks, milestone, models and agreement (``prefloop status --json``)."""
        from prefloop.loop.status import status_report

        return status_report(self.engine(), self.config)

    # --- the model ----------------------------------------------------------------------------

    def train(
        self,
        *,
        dimensions: list[str] | None = None,
        parent: str | None = None,
        model: ModelConfig | None = None,
        progress: bool = False,
    ) -> TrainResult:
        """Train a model on the store's pool labels (``prefloop train``); ``.name`` is the new version.

        ``model`` replaces ``[model]`` for this run; ``dimensions`` defaults to ``[objectives]``'s;
        ``parent`` warm-starts from that version (``--from``).
        """
        from prefloop.loop.train import train_objectives

        if model is not None and not isinstance(model, ModelConfig):
            raise ConfigError(f"train(model=...): a ModelConfig, not {model!r}")
        return train_objectives(
            self.engine(),
            model or self.config.model,
            self.config.artifacts_dir,
            list(dimensions or []) or self.config.objectives.dimensions,
            parent=parent,
            progress=progress,
            aggregate=self.config.annotators.aggregate,
            annotators=self.config.annotators,
        )

    def score(self, model: str | None = None, *, all_pairs: bool = False, progress: bool = False) -> ScoreRun:
        """Store a model's (default: the newest) predictions for the unlabeled pool (``prefloop score``).

        ``all_pairs`` scores every pair, held-out ones included; ``scores()`` reads them back.
        """
        from prefloop.loop.reward import score_pool
        from prefloop.objectives import combined_reward

        name, n = score_pool(
            self.engine(),
            model,
            all_pairs=all_pairs,
            progress=progress,
            objectives=combined_reward(self.config.objectives),
        )
        return ScoreRun(model=name, scored=n)

    def scores(self, model: str | None = None, *, dimension: str | None = None) -> Records:
        """A model's stored predictions, one row per pair (the rows of ``export --kind scores``):
        ``pair_key``, ``split``, the texts, ``p_a_<dimension>``, ``p_tie_<dimension>``,
        ``spread_<dimension>``, ``reward`` and ``reward_prefers``."""
        from prefloop.data.export_scores import score_records

        return Records(score_records(self.engine(), model=model, dimension=dimension))

    def evaluate(
        self,
        model: str | None = None,
        *,
        data: str | Path | None = None,
        split: str = "test",
        dimension: str | None = None,
        out: str | Path | None = None,
        format: str | None = None,
        file_type: str | None = None,
        mapping: Mapping[str, str] | None = None,
        label_map: Mapping[str, str] | None = None,
        label_decoder: str | None = None,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Accuracy, log-loss, ECE and length bias of a model on held-out labels (``prefloop eval --json``).

        Without ``data``, the store's ``split`` labels; ``data`` is a labelled file read as
        ``ingest`` reads it (the same keywords), NOT ingested. ``out`` also writes the plots.
        """
        from prefloop.loop.reward import evaluate_model

        kind, options = _shape_options(format, file_type, mapping, label_map, label_decoder)
        return evaluate_model(
            self.engine(),
            model,
            data=str(data) if data is not None else None,
            out=str(out) if out is not None else None,
            split=split,
            progress=progress,
            dimension=dimension,
            data_format=kind,
            data_options=options,
        )

    # --- the loop -----------------------------------------------------------------------------

    def select(self, n: int | None = None, *, progress: bool = False) -> Records:
        """The ``n`` (default ``[acquisition] queue_size``) pool pairs the strategy would send next, best
        first, with the newest model's stored predictions (random before any model), as the next sync's
        top-up picks them; nothing is written. Gold checks a top-up mixes in are not among them."""
        from prefloop.loop.candidates import next_pairs

        if n is not None and n < 1:
            raise ConfigError(f"select(n={n}): ask for at least 1 pair")
        return Records(next_pairs(self.engine(), self.config, n or self.config.acquisition.queue_size, progress))

    def sync(
        self,
        *,
        dry_run: bool = False,
        progress: bool = False,
        log: Callable[[dict[str, Any]], None] | None = None,
    ) -> SyncReport:
        """One cycle (``prefloop sync``): pull, retrain at a milestone, rescore, top up the queue.

        Returns the ``SyncReport``: ``.steps`` holds each step's record (the JSON lines the command
        prints), ``.changed`` whether anything changed, ``.model`` the model that scored. ``log``
        receives each step as it ends (default: nothing is printed). Errors are raised, not logged.
        """
        from prefloop.loop.sync import run_sync

        check_secrets(self.config)
        return run_sync(
            self.engine(migrate=not dry_run),
            self.config,
            dry_run=dry_run,
            progress=progress,
            log=log or (lambda _entry: None),
        )
