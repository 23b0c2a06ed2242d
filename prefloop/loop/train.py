"""Training a model on the store's labels, for one dimension or several (``prefloop train``, sync).

``train_objectives``: ``prefloop train --dimension A --dimension B`` (or ``[objectives]
dimensions``): each dimension's live pool labels train that dimension's head only; one model
version is recorded, its config naming the dimensions in order. One dimension is an ordinary
single-objective model trained on that dimension's labels (``reward.train_model``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from prefloop.config import AnnotatorSettings
from prefloop.errors import InvalidRequest, PrefloopError
from prefloop.faults import checkpoint
from prefloop.loop.objectives import check_dimensions
from prefloop.loop.reward import (
    TrainResult,
    annotator_weights,
    gold_weights,
    load_ensemble,
    save_version,
    train_model,
    training_examples,
)
from prefloop.model import ModelConfig, PreferenceExample
from prefloop.model.objectives import MULTI_MODES, MultiObjectiveModel
from prefloop.store.db import session_scope
from prefloop.store.queries import iter_labeled_rows, label_dimensions
from prefloop.store.versions import find_model, label_snapshot

__all__ = ["train_objectives"]


def train_objectives(
    engine: Engine,
    config: ModelConfig,
    artifacts_dir: str,
    dimensions: Sequence[str],
    parent: str | None = None,
    progress: bool = True,
    aggregate: str = "none",
    annotators: AnnotatorSettings | None = None,
) -> TrainResult:
    """Train one model on ``dimensions`` (one → a single-objective model of that dimension).

    With several dimensions every head is fitted afresh on all of its dimension's labels (heads
    cost seconds); an adapted ``parent`` of the same dimensions lends its fine-tuned backbone
    until the labels have grown ``adapt_growth``-fold (``MultiObjectiveModel.train``). ``parent``
    is recorded as the lineage in every case.
    """
    dims = list(dimensions) or ["overall"]
    if len(dims) > 1 and config.mode not in MULTI_MODES:
        raise InvalidRequest(
            f"several dimensions in one model need --mode heads or --mode adapted, not {config.mode!r} "
            "(finetune mode would train K LoRA members per dimension)"
        )
    with session_scope(engine) as session:
        check_dimensions(dims, label_dimensions(session))
    if len(dims) == 1:
        return train_model(
            engine,
            config,
            artifacts_dir,
            parent,
            progress=progress,
            aggregate=aggregate,
            annotators=annotators,
            dimension=dims[0],
        )
    with session_scope(engine) as session:
        parent_row = find_model(session, parent) if parent else None
        if parent and parent_row is None:
            raise InvalidRequest(f"no model version {parent}; `prefloop status` lists the versions in this store")
        snapshot = label_snapshot(session)
        weights = gold_weights(session, annotators or AnnotatorSettings())
        examples: dict[str, list[PreferenceExample]] = {}
        n_rows = 0
        for dim in dims:
            rows = list(iter_labeled_rows(session, dimension=dim, split="pool", max_label_id=snapshot["max_label_id"]))
            n_rows += len(rows)
            examples[dim] = [ex for _, ex in training_examples(rows, aggregate, weights)]
    empty = [d for d, ex in examples.items() if not ex]
    if empty:
        raise PrefloopError(
            f"no training labels of dimension {', '.join(empty)} in the pool split (held-out labels do not "
            "train); ingest some with `prefloop ingest FILE --dimension NAME`"
        )
    warm = load_ensemble(parent_row) if parent_row is not None and config.mode == "adapted" else None
    checkpoint("train:started")
    model, report = MultiObjectiveModel.train(
        examples, config, progress=progress, parent=warm if isinstance(warm, MultiObjectiveModel) else None
    )
    model_id = save_version(
        engine,
        model,
        report,
        config,
        artifacts_dir,
        parent_id=parent_row.id if parent_row else None,
        settings={"aggregate": aggregate, "dimensions": dims, "annotator_weights": annotator_weights(weights)},
        snapshot={**snapshot, "n_trained": n_rows},
    )
    n = sum(len(e) for e in examples.values())
    return TrainResult(model.name, model_id, parent_row.name if parent_row else None, n, 0, report)
