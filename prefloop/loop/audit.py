"""`prefloop audit`: counterfactual probes for reward hacking on a file of pairs (joins data, store and model)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine

from prefloop.errors import InvalidRequest, PrefloopError
from prefloop.model import RewardEnsemble

if TYPE_CHECKING:
    from prefloop.data.fields import ShapeOptions

__all__ = ["audit_model", "audit_pairs", "audit_version", "labelled_pairs", "probe_shifts", "resolve_ensemble"]

Pair = tuple[str, str, str]


_SAVED_HINT = "pass a model version name (`prefloop status` lists them) or a folder `prefloop train` saved"


def _names_a_folder(model: str | None) -> bool:
    """A path, not a version name: an existing folder, or anything with a path separator in it."""
    return bool(model) and (Path(str(model)).is_dir() or "/" in str(model) or os.sep in str(model))


def resolve_ensemble(open_engine: Callable[[], Engine], model: str | None) -> tuple[RewardEnsemble, str]:
    """The ensemble ``model`` names and its name: a saved model folder, else a version in the store
    (default: the newest). The store is opened only when ``model`` is not a folder."""
    if _names_a_folder(model):
        folder = Path(str(model))
        if not folder.is_dir():
            raise InvalidRequest(f"no model folder at {folder}; {_SAVED_HINT} (prefloop-artifacts/models/rm-...)")
        if not (folder / "config.json").exists() or not (folder / "meta.json").exists():
            raise InvalidRequest(
                f"{folder} is a folder but not a saved model (no config.json / meta.json); {_SAVED_HINT} "
                "(prefloop-artifacts/models/rm-...)"
            )
        ens = RewardEnsemble.load(folder)
        return ens, ens.name
    from prefloop.loop.reward import load_ensemble
    from prefloop.store.db import session_scope
    from prefloop.store.versions import find_model

    with session_scope(open_engine()) as session:
        row = find_model(session, model)
        if row is None and model:
            raise InvalidRequest(f"no model version {model}; `prefloop status` lists the versions in this store")
        if row is None:
            raise PrefloopError("no model to audit: run `prefloop train` first, or pass --model FOLDER")
        return load_ensemble(row), row.name


def audit_pairs(
    data: str, max_pairs: int | None = None, seed: int = 0, fmt: str | None = None, opts: ShapeOptions | None = None
) -> list[Pair]:
    """The distinct ``(prompt, a, b)`` pairs of a file in any format ``ingest`` reads; labels are not needed.

    ``fmt`` and ``opts`` say how to read it, as for ingest (file type; dataset format, column
    map, label map). A bad row raises ``PrefloopError`` naming its file and line. A pair given
    several times (one row per annotator, or with its responses swapped) counts once, in its
    first orientation. With ``max_pairs``, a seeded sample of that many, in file order.
    """
    return audit_pairs_and_labels(data, max_pairs, seed, fmt, opts)[0]


def audit_pairs_and_labels(
    data: str, max_pairs: int | None = None, seed: int = 0, fmt: str | None = None, opts: ShapeOptions | None = None
) -> tuple[list[Pair], np.ndarray]:
    """``audit_pairs`` and each pair's label where the file has one: 1.0 a preferred, 0.0 b, 0.5 a tie, NaN none.

    A pair labelled several times takes the majority of its labels, turned to its first
    orientation (an even split is a tie).
    """
    from prefloop.data.ingest import read_unstored
    from prefloop.types import Choice

    read = read_unstored(data, "audit", fmt, opts)
    # a pair given twice (one row per annotator, or with a and b swapped) is audited once
    unique: dict[tuple[str, str, str], Pair] = {}
    votes: dict[tuple[str, str, str], list[float]] = {}
    value = {Choice.A: 1.0, Choice.B: 0.0, Choice.TIE: 0.5}
    for r in read.records:
        ordered = sorted((r.response_a, r.response_b))
        key = (r.prompt, ordered[0], ordered[1])
        first = unique.setdefault(key, (r.prompt, r.response_a, r.response_b))
        if r.label in value:
            vote = value[r.label]
            votes.setdefault(key, []).append(vote if first[1] == r.response_a else 1.0 - vote)
    pairs = list(unique.values())
    if not pairs:
        skipped = f" ({read.degenerate} degenerate rows skipped)" if read.degenerate else ""
        raise PrefloopError(
            f"{data}: no pairs to audit{skipped}; pass a file of (prompt, response_a, response_b) pairs"
        )
    share_a = np.array([np.mean(votes[k]) if k in votes else np.nan for k in unique])
    labels = np.where(share_a > 0.5, 1.0, np.where(share_a < 0.5, 0.0, np.where(np.isnan(share_a), np.nan, 0.5)))
    if max_pairs is not None and len(pairs) > max_pairs:
        keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=max_pairs, replace=False))
        pairs, labels = [pairs[i] for i in keep], labels[keep]
    return pairs, labels


def audit_model(
    open_engine: Callable[[], Engine],
    model: str | None,
    data: str,
    out: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
    max_pairs: int | None = None,
    progress: bool = False,
    data_format: str | None = None,
    data_options: ShapeOptions | None = None,
) -> dict[str, Any]:
    """Audit a model (store version or saved folder) on a file's pairs; with ``out``, write the report files.

    ``data_format`` / ``data_options`` say how to read ``data`` (see ``audit_pairs``).

    Returns the ``audit --json`` object: ``model``, ``data``, ``probes`` (each with ``name``,
    ``mean_shift``, ``flip_rate``, ``ci``, ``flip_ci``, ...), ``length_correlation``,
    ``format_correlations``, ``prefers_longer``, ``length_groups`` (accuracy by length group on
    the pairs the file labels, None when it labels none) and, with ``out``, ``files``.
    """
    from prefloop.model.audit import ensemble_scorer, run_audit
    from prefloop.model.audit_report import write_audit_report

    if resamples < 1:
        raise InvalidRequest(f"--resamples {resamples}: use 1 or more (1000 is the default)")
    if max_pairs is not None and max_pairs < 1:
        raise InvalidRequest(f"--max-pairs {max_pairs}: use 1 or more, or leave it out to audit every pair")
    # a bad file fails before a model loads
    pairs, labels = audit_pairs_and_labels(data, max_pairs, seed, data_format, data_options)
    ens, name = resolve_ensemble(open_engine, model)
    result = run_audit(pairs, ensemble_scorer(ens, progress=progress), resamples=resamples, seed=seed)
    report: dict[str, Any] = {"model": name, "data": data, **result.to_dict()}
    report["length_groups"] = _labelled_groups(ens, pairs, labels, progress)
    if out:
        report["files"] = write_audit_report(result, out, name, data)
        if report["length_groups"] is not None:
            report["files"].update(_write_length_groups(report, out))
    return report


def _labelled_groups(
    ens: RewardEnsemble, pairs: list[Pair], labels: np.ndarray, progress: bool
) -> dict[str, Any] | None:
    """Accuracy by length group on the labelled pairs (``evaluate``'s definitions), None without labels."""
    from prefloop.model import evaluate_prediction

    keep = np.flatnonzero(~np.isnan(labels))
    if not keep.size:
        return None
    labelled = [pairs[i] for i in keep]
    names = ["a" if y == 1.0 else "b" if y == 0.0 else "tie" for y in labels[keep]]
    metrics, _, _ = evaluate_prediction(ens.predict(labelled, progress=progress), labelled, names)
    return {"accuracy": metrics["accuracy"], "n_labelled_pairs": len(labelled), **metrics["length_groups"]}


def _write_length_groups(report: dict[str, Any], out: str) -> dict[str, str]:
    """``length_groups.png`` beside the audit, the group table appended to audit.md and the numbers to audit.json."""
    import json

    from prefloop.model import plot_length_groups
    from prefloop.model.length_groups import group_markdown

    groups = report["length_groups"]
    png = plot_length_groups(groups, Path(out) / "length_groups.png", overall=groups["accuracy"])
    md = Path(report["files"]["report"])
    md.write_text(
        md.read_text().rstrip("\n")
        + f"\n\n## Accuracy by length group ({groups['n_labelled_pairs']} labelled pairs)\n\n"
        + f"Overall accuracy {'–' if groups['accuracy'] is None else format(groups['accuracy'], '.3f')}.\n\n"
        + f"![accuracy by length group]({png.name})\n\n"
        + group_markdown(groups)
    )
    js = Path(report["files"]["json"])
    js.write_text(json.dumps({**json.loads(js.read_text()), "length_groups": groups}, indent=2, sort_keys=True))
    return {"length_groups_plot": str(png)}


def labelled_pairs(engine: Engine, n: int, seed: int = 0) -> list[Pair]:
    """A seeded sample of ``n`` distinct labelled pairs of the store (any split and dimension; gold
    checks left out), in store order; all of them when there are fewer."""
    from prefloop.store.db import session_scope
    from prefloop.store.queries import iter_labeled_rows

    with session_scope(engine) as session:
        unique = {r.pair_id: (r.prompt, r.response_a, r.response_b) for r in iter_labeled_rows(session, dimension=None)}
    pairs = list(unique.values())
    if len(pairs) > n:
        keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=n, replace=False))
        pairs = [pairs[i] for i in keep]
    return pairs


def audit_version(
    engine: Engine, name: str, n_pairs: int, seed: int = 0, resamples: int = 1000, progress: bool = False
) -> dict[str, Any]:
    """Audit model version ``name`` on ``n_pairs`` labelled pairs of the store and store the result
    with the version (``metrics["audit"]``); returns it (``audit --json``'s object plus ``seconds`` and
    ``audited_at``, when it finished: ISO 8601, UTC).

    A several-dimension model is audited through its first dimension's head, on the inputs that
    head reads.
    """
    import time
    from datetime import UTC, datetime

    from prefloop.loop.reward import load_ensemble
    from prefloop.model.audit import ensemble_scorer, run_audit
    from prefloop.store.db import session_scope
    from prefloop.store.versions import find_model, record_audit

    started = time.perf_counter()
    pairs = labelled_pairs(engine, n_pairs, seed)
    if not pairs:
        raise PrefloopError("no labelled pairs to audit the new model on; label some pairs first")
    with session_scope(engine) as session:
        row = find_model(session, name)
        if row is None:
            raise InvalidRequest(f"no model version {name}; `prefloop status` lists the versions in this store")
        model = load_ensemble(row)
    if not isinstance(model, RewardEnsemble):  # a MultiObjectiveModel: one head per dimension
        dimension = model.dimensions[0]
        pairs, model = model.inputs(pairs, dimension), model.head(dimension)
    result = run_audit(pairs, ensemble_scorer(model, progress=progress), resamples=resamples, seed=seed)
    audit = {
        "model": name,
        "data": "store",
        **result.to_dict(),
        "seconds": round(time.perf_counter() - started, 3),
        "audited_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with session_scope(engine) as session:
        record_audit(session, name, audit)
    return audit


def probe_shifts(audit: dict[str, Any]) -> dict[str, Any]:
    """The short form sync logs: per probe its mean shift and flip rate, and reward–length r."""
    return {
        "pairs": audit["n_pairs"],
        "seconds": audit.get("seconds"),
        "shifts": {p["name"]: p["mean_shift"] for p in audit["probes"]},
        "flip_rates": {p["name"]: p["flip_rate"] for p in audit["probes"]},
        "r_length": audit["length_correlation"]["r"],
    }
