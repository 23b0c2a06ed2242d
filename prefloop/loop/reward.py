"""Train, score and evaluate reward models on the store's data (joins the store and the model room)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from prefloop.annotators.aggregate import AGGREGATIONS, aggregate_labels
from prefloop.config import AnnotatorSettings
from prefloop.errors import InvalidRequest, ModelError, PrefloopError
from prefloop.faults import checkpoint
from prefloop.loop.objectives import evaluation_head, predict_dimensions, scored_dimensions
from prefloop.model import (
    ModelConfig,
    PreferenceExample,
    RewardEnsemble,
    evaluate_prediction,
    plot_length_groups,
    plot_reliability,
    plot_reward_vs_length,
)
from prefloop.store.db import session_scope
from prefloop.store.gold import gold_accuracy
from prefloop.store.models import ModelVersion
from prefloop.store.queries import LabeledRow, iter_labeled_rows, label_dimensions, pair_texts, pool_pair_ids
from prefloop.store.tasks import excluded_pair_ids
from prefloop.store.versions import (
    find_model,
    label_snapshot,
    model_dimensions,
    record_model_version,
    save_predictions,
    unscored_pair_ids,
)
from prefloop.types import Choice

if TYPE_CHECKING:
    from prefloop.data.fields import ShapeOptions
    from prefloop.objectives import CombinedReward

__all__ = ["TrainResult", "evaluate_model", "load_ensemble", "score_pool", "train_model", "training_examples"]

SCORE_CHUNK = 2000


@dataclass
class TrainResult:
    name: str
    model_id: int
    parent: str | None
    n_new: int
    n_replay_pool: int
    report: dict[str, Any]


def _example(row: LabeledRow) -> PreferenceExample:
    return PreferenceExample(
        prompt=row.prompt,
        response_a=row.response_a,
        response_b=row.response_b,
        choice=Choice(row.choice),
        strength=row.strength,
    )


def gold_weights(session: Session, settings: AnnotatorSettings) -> dict[tuple[str, str], float]:
    """(backend, annotator) → training weight for annotators judged by enough gold checks:
    1 when they pass, and when they fail 0 (``exclude``), their gold accuracy (``downweight``)
    or 1 (``keep``)."""
    out = {}
    for who, (n, right) in gold_accuracy(session).items():
        if n < settings.gold_min_labels:
            continue
        accuracy = right / n
        if accuracy >= settings.min_gold_accuracy or settings.low_gold == "keep":
            out[who] = 1.0
        else:
            out[who] = 0.0 if settings.low_gold == "exclude" else accuracy
    return out


def training_examples(
    rows: Sequence[LabeledRow], aggregate: str = "none", weights: Mapping[tuple[str, str], float] | None = None
) -> list[tuple[int, PreferenceExample]]:
    """Labels → training examples, each with the newest label id behind it (for the new/old split).

    * ``none``: every label is an example; several annotators on one pair become a soft target
      by their counts (the model room sums the weights of a pair's labels).
    * ``majority``: one example per pair, the majority choice; split votes are left out.
    * ``dawid-skene``: per pair, the Dawid–Skene posterior over (a, b, tie) as a soft target of
      total weight 1: one example per class weighted by its posterior, so a pair counts once and
      a label from an unreliable annotator moves it less.

    ``weights`` ((backend, annotator) → weight, default 1) scales each label of ``none``; a
    weight of 0 leaves the annotator's labels out of every aggregation.
    """
    weights = weights or {}
    rows = [r for r in rows if weights.get((r.backend, r.annotator), 1.0) > 0]
    if aggregate == "none":
        return [(r.label_id, replace(_example(r), weight=weights.get((r.backend, r.annotator), 1.0))) for r in rows]
    if aggregate not in AGGREGATIONS:
        raise PrefloopError(f"unknown aggregation {aggregate!r}; use one of {', '.join(AGGREGATIONS)}")
    targets = aggregate_labels(
        [r.pair_id for r in rows], [(r.backend, r.annotator) for r in rows], [r.choice for r in rows], aggregate
    )
    by_pair: dict[int, list[LabeledRow]] = {}
    for r in rows:
        by_pair.setdefault(r.pair_id, []).append(r)
    out: list[tuple[int, PreferenceExample]] = []
    for pair_id, labels in by_pair.items():
        target = targets.get(pair_id)
        if target is None:
            continue
        first, newest = labels[0], max(r.label_id for r in labels)
        for choice, weight in zip((Choice.A, Choice.B, Choice.TIE), target, strict=True):
            if weight < 1e-6:
                continue
            strengths = [r.strength for r in labels if r.choice == choice.value and r.strength is not None]
            out.append(
                (
                    newest,
                    PreferenceExample(
                        prompt=first.prompt,
                        response_a=first.response_a,
                        response_b=first.response_b,
                        choice=choice,
                        strength=sum(strengths) / len(strengths) if strengths else None,
                        weight=float(weight),
                    ),
                )
            )
    return out


def load_ensemble(model: ModelVersion) -> Any:
    """The saved model: a ``RewardEnsemble``, or a ``MultiObjectiveModel`` (one head per dimension)."""
    from prefloop.model.objectives import MultiObjectiveModel, is_multi_objective

    if not model.artifact_path or not Path(model.artifact_path).exists():
        raise PrefloopError(
            f"weights of model {model.name} are missing at {model.artifact_path}; retrain with `prefloop train`"
        )
    if is_multi_objective(model.artifact_path):
        return MultiObjectiveModel.load(model.artifact_path)
    return RewardEnsemble.load(model.artifact_path)


def train_model(
    engine: Engine,
    config: ModelConfig,
    artifacts_dir: str,
    parent: str | None = None,
    incremental: bool = True,
    progress: bool = True,
    aggregate: str = "none",
    annotators: AnnotatorSettings | None = None,
    dimension: str = "overall",
) -> TrainResult:
    """Train on the store's live pool labels of ``dimension``; with a parent, warm-start on new labels + replay.

    Several annotators' labels on one pair are combined as ``aggregate`` says (see
    ``training_examples``; by default each counts as one example and the model room turns
    them into soft targets). The new version records its parent, config (with the
    aggregation), label snapshot and metrics; the same weights trained twice stay one version.
    Labels given on gold checks never train; annotators who fail them are left out or
    down-weighted as ``annotators.low_gold`` says.
    """
    with session_scope(engine) as session:
        parent_row = find_model(session, parent) if parent else None
        if parent and parent_row is None:
            raise InvalidRequest(f"no model version {parent}; `prefloop status` lists the versions in this store")
        snapshot = label_snapshot(session)
        rows = list(
            iter_labeled_rows(session, dimension=dimension, split="pool", max_label_id=snapshot["max_label_id"])
        )
        weights = gold_weights(session, annotators or AnnotatorSettings())
    if not rows:
        raise PrefloopError("no labels to train on: ingest labeled pairs or pull some with `prefloop sync`")
    parent_ens = None
    examples = training_examples(rows, aggregate, weights)
    new, old = [ex for _, ex in examples], []
    if parent_row is not None and incremental and model_dimensions(parent_row) != [dimension]:
        incremental = False  # another dimension (or a multi-objective model): lineage only, a fresh fit
    if parent_row is not None and incremental:
        parent_ens = load_ensemble(parent_row)
        theirs = (parent_ens.config.mode, parent_ens.config.resolved_backbone(), parent_ens.config.k)
        if theirs != (config.mode, config.resolved_backbone(), config.k):
            raise ModelError(
                f"--from {parent_row.name}: that model was trained in {theirs[0]} mode with "
                f"k={theirs[2]} on {theirs[1]}; train with the same mode, backbone and k, or without "
                "--from"
            )
        cut = int(parent_row.label_snapshot.get("max_label_id", 0))
        new = [ex for newest, ex in examples if newest > cut]
        old = [ex for newest, ex in examples if newest <= cut]
        if not new:
            raise PrefloopError(f"no labels since model {parent_row.name}; nothing to learn")
    if not new:
        raise PrefloopError(f"no training pairs left after {aggregate} aggregation (every pair's votes are split)")
    checkpoint("train:started")
    ens, report = RewardEnsemble.train(new, config, parent=parent_ens, replay=old or None, progress=progress)
    model_id = save_version(
        engine,
        ens,
        report,
        config,
        artifacts_dir,
        parent_id=parent_row.id if parent_row and incremental else None,
        settings={"aggregate": aggregate, "dimensions": [dimension], "annotator_weights": annotator_weights(weights)},
        snapshot={**snapshot, "n_trained": len(rows)},
    )
    return TrainResult(ens.name, model_id, parent_row.name if parent_row else None, len(new), len(old), report)


def annotator_weights(weights: dict[tuple[str, str], float]) -> dict[str, float]:
    """The gold-check weights a version was trained with, as its config records them (1.0s left out)."""
    return {f"{b}:{a}": w for (b, a), w in sorted(weights.items()) if w != 1.0}


def save_version(
    engine: Engine,
    model: Any,
    report: dict[str, Any],
    config: ModelConfig,
    artifacts_dir: str,
    *,
    parent_id: int | None,
    settings: dict[str, Any],
    snapshot: dict[str, Any],
) -> int:
    """Save a trained model under ``artifacts_dir/models`` and record its version; returns the version id.

    The files are written first: a crash between the two (the ``train:saved`` checkpoint) leaves
    files no version points at, never a version without its files.
    """
    path = Path(artifacts_dir) / "models" / model.name
    model.save(path)
    checkpoint("train:saved")
    with session_scope(engine) as session:
        row = record_model_version(
            session,
            name=model.name,
            parent_id=parent_id,
            base_model=config.resolved_backbone(),
            mode=config.mode,
            config={**config.to_dict(), **settings},
            artifact_path=str(path.resolve()),
            snapshot=snapshot,
            metrics=_jsonable(report),
        )
        return int(row.id)


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float | int | str | bool | type(None) | list | dict):
            out[key] = value
    return out


def _no_model(name: str | None, what: str) -> PrefloopError:
    """A named version that does not exist is not the same as no model at all."""
    if name:
        return InvalidRequest(f"no model version {name}; `prefloop status` lists the versions in this store")
    return PrefloopError(f"no model to {what}: run `prefloop train` first")


def score_pool(
    engine: Engine,
    model: str | None = None,
    all_pairs: bool = False,
    progress: bool = True,
    also: Sequence[int] = (),
    objectives: CombinedReward | None = None,
) -> tuple[str, int]:
    """Store predictions of a model (default: newest) for unlabeled pool pairs (or all pairs).

    A multi-objective model stores one prediction per dimension, plus the ``combined`` reward
    that ``objectives`` (``[objectives]``) defines; a single-objective model one, on its dimension.

    ``also`` adds pair ids the pool leaves out (pending tasks being re-ranked). Pairs
    already scored by that model are skipped, so a rerun after a crash only does what is
    left. Identical prompts and responses are embedded once (content-hash cache).
    """
    with session_scope(engine) as session:
        row = find_model(session, model)
        if row is None:
            raise _no_model(model, "score with")
        name, model_id = row.name, row.id
        ens = load_ensemble(row)
        dims = scored_dimensions(ens, row, objectives)
        ids = pool_pair_ids(session, all_pairs=all_pairs)
        if not all_pairs:
            skip = excluded_pair_ids(session)
            ids = [i for i in ids if i not in skip]
        ids = unscored_pair_ids(session, model_id, ids + sorted(set(also) - set(ids)), dims)
    done = 0
    for start in range(0, len(ids), SCORE_CHUNK):
        chunk = ids[start : start + SCORE_CHUNK]
        with session_scope(engine) as session:
            texts = pair_texts(session, chunk)
        preds = predict_dimensions(ens, row, texts, objectives, progress)
        with session_scope(engine) as session:  # each chunk commits: a crash keeps what was scored
            for dim, pred in preds.items():
                save_predictions(session, model_id, chunk, pred.p_a, pred.p_tie, pred.spread, pred.p_a_members, dim)
        done += len(chunk)
    return name, done


def _file_pairs(
    path: str, fmt: str | None = None, opts: ShapeOptions | None = None
) -> tuple[list[tuple[str, str, str]], list[str]]:
    from prefloop.data.ingest import read_unstored

    texts, labels = [], []
    for record in read_unstored(path, "eval", fmt, opts).records:
        if record.label is not None and record.label is not Choice.SKIP:
            texts.append((record.prompt, record.response_a, record.response_b))
            labels.append(record.label.value)
    return texts, labels


def evaluate_model(
    engine: Engine,
    model: str | None = None,
    data: str | None = None,
    out: str | None = None,
    split: str = "test",
    progress: bool = True,
    dimension: str | None = None,
    data_format: str | None = None,
    data_options: ShapeOptions | None = None,
) -> dict[str, Any]:
    """Metrics of a model on held-out labels (the store's ``split`` pairs, or a file NOT ingested).

    ``data_format`` (file type) and ``data_options`` (dataset format, column and label maps)
    say how to read ``data``, as for ingest.

    ``dimension`` picks the head of a multi-objective model and the labels it is measured on
    (default: the model's first dimension; see ``objectives.evaluation_head``).

    With ``out``, also writes ``reliability.png``, ``reward_vs_length.png`` and ``length_groups.png`` there.
    """
    with session_scope(engine) as session:
        row = find_model(session, model)
        if row is None:
            raise _no_model(model, "evaluate")
        whole, name = load_ensemble(row), row.name
        ens, dim, _ = evaluation_head(whole, row, dimension)
        if data is None:
            rows = list(iter_labeled_rows(session, dimension=dim, split=split))
            texts = [(r.prompt, r.response_a, r.response_b) for r in rows]
            labels = [r.choice for r in rows]
            known = label_dimensions(session)
    if data is not None:
        texts, labels = _file_pairs(data, data_format, data_options)
    if not texts:
        others = f" (labels exist for: {', '.join(known)})" if data is None and known else ""
        raise PrefloopError(
            f"no held-out labels of dimension {dim!r}{others}: ingest some with "
            f"`prefloop ingest FILE --split {split} --dimension {dim}` or pass --data FILE"
        )
    _, _, inputs = evaluation_head(whole, row, dim, texts)
    metrics = evaluate_texts(ens, inputs or texts, labels, name, out, progress)
    metrics["dimension"] = dim
    return metrics


def evaluate_texts(
    ens: RewardEnsemble,
    texts: Sequence[tuple[str, str, str]],
    labels: Sequence[str],
    name: str,
    out: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    pred = ens.predict(list(texts), progress=progress)
    return report_prediction(pred, texts, labels, name, out)


def report_prediction(
    pred: Any, texts: Sequence[tuple[str, str, str]], labels: Sequence[str], name: str, out: str | None = None
) -> dict[str, Any]:
    """The metrics of model ``name``'s prediction of ``texts``; with ``out``, its reliability, length and
    length-group plots (``reliability.png``, ``reward_vs_length.png``, ``length_groups.png``)."""
    metrics, len_a, len_b = evaluate_prediction(pred, list(texts), labels)
    metrics["model"] = name
    if out:
        folder = Path(out)
        plot_reliability(pred.p_a, labels, folder / "reliability.png", p_tie=pred.p_tie)
        plot_reward_vs_length(
            np.concatenate([pred.reward_a, pred.reward_b]),
            np.concatenate([len_a, len_b]),
            folder / "reward_vs_length.png",
        )
        plot_length_groups(metrics["length_groups"], folder / "length_groups.png", overall=metrics["accuracy"])
        metrics["plots"] = [str(folder / n) for n in ("reliability.png", "reward_vs_length.png", "length_groups.png")]
    return metrics
