"""``prefloop export OUT --kind scores``: a model's stored predictions per dimension, one row per pair.

What "export per dimension" means for a model with a head per dimension: labels of one
dimension go out with ``--dimension NAME`` (``export.py``); the model's view goes out here, a
row per scored pair with the texts and, for each dimension ``d`` it stored (each head, and
``combined`` when ``[objectives]`` combined them at ``score`` time):

- ``p_a_<d>``: P(a≻b) of that head (the mean over members), ``p_tie_<d>``, ``spread_<d>``
  (std of P(a≻b) over members);
- ``reward``: the dimension that is the model's reward (``combined`` when stored, else the
  first), and ``reward_prefers``: ``a`` or ``b``, the response that reward prefers.

Only pairs ``prefloop score`` has scored appear (``score --all`` scores every split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from prefloop.data.export import FORMATS, ExportReport, _Sink
from prefloop.errors import InvalidRequest, PrefloopError
from prefloop.store.db import session_scope
from prefloop.store.queries import pairs_by_id
from prefloop.store.versions import find_model, model_dimensions, predictions_by_pair, reward_dimension

__all__ = ["export_scores", "score_records"]


def score_records(engine: Engine, *, model: str | None = None, dimension: str | None = None) -> list[dict[str, Any]]:
    """A model's (default: the newest) stored predictions, one record per pair; ``dimension`` keeps one.

    The rows ``export --kind scores`` writes and ``Loop.scores`` returns.
    """
    with session_scope(engine) as session:
        row = find_model(session, model)
        if row is None:
            raise InvalidRequest(
                f"no model version {model}; `prefloop status` lists them" if model else "no model: run `prefloop train`"
            )
        reward = reward_dimension(session, row)
        known = [*model_dimensions(row), *(["combined"] if reward == "combined" else [])]
        if dimension is not None and dimension not in known:
            raise InvalidRequest(
                f"model {row.name} has no predictions of dimension {dimension!r}; its dimensions: {', '.join(known)}"
            )
        preds = predictions_by_pair(session, row.id, [dimension] if dimension else None)
        if not preds:
            raise PrefloopError(f"model {row.name} has scored no pairs: run `prefloop score --all --model {row.name}`")
        pairs = pairs_by_id(session, list(preds))
        records = []
        for pair_id, by_dim in preds.items():
            pair = pairs[pair_id]
            record: dict[str, Any] = {
                "pair_key": pair.key,
                "split": pair.split,
                "prompt": pair.prompt.text,
                "response_a": pair.response_a.text,
                "response_b": pair.response_b.text,
                "model": row.name,
            }
            for dim in known:
                if dim in by_dim:
                    p = by_dim[dim]
                    record.update({f"p_a_{dim}": p.p_a, f"p_tie_{dim}": p.p_tie, f"spread_{dim}": p.spread})
            if reward in by_dim:
                best = by_dim[reward]
                record["reward"] = reward
                record["reward_prefers"] = "a" if best.p_a >= 1.0 - best.p_a - best.p_tie else "b"
            records.append(record)
    return records


def export_scores(
    engine: Engine, out: str, *, model: str | None = None, fmt: str = "jsonl", dimension: str | None = None
) -> ExportReport:
    """Write ``score_records`` of a model (default: the newest) to ``out``; ``dimension`` keeps one."""
    if fmt not in FORMATS:
        raise PrefloopError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    records = score_records(engine, model=model, dimension=dimension)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    sink = _Sink(path, fmt)
    try:
        for record in records:
            sink.write(record)
    finally:
        sink.close()
    return ExportReport(path=str(path), rows=sink.count, ties_path=None, ties=0, disagreements=0)
