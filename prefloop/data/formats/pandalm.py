"""PandaLM test set (WeOpenML/PandaLM ``data/testset-v1.json``): three human votes per pair.

A JSON ARRAY of objects: ``idx``, ``motivation_app``, ``cmp_key`` (the two models, joined by
``_``), ``instruction``, ``input``, ``response1``, ``response2`` and ``annotator1``,
``annotator2``, ``annotator3``, each 0 = tie, 1 = response1 better, 2 = response2 better.
Every row gives three labels, one per annotator column (named ``pandalm:annotator1`` ...;
the paper does not say a column is always the same person). The prompt is the
instruction, followed by the input when there is one.

Two things in the real file matter: a few responses are the JSON value ``true`` (read as
the text "True"), and some responses are EMPTY, which annotators judged (the other answer
won): an empty response is a real answer here, not a degenerate row. Several rows compare
the same two texts produced by different model pairs; ``idx`` keeps their votes apart.
"""

from __future__ import annotations

from prefloop.data.fields import ShapeOptions, Where, check_text, make_pair
from prefloop.data.formats.base import Adapter, Row, label_of, required, with_options
from prefloop.types import Choice, PairRecord

__all__ = ["ADAPTERS"]

VOTES = {0: Choice.TIE, 1: Choice.A, 2: Choice.B}
ANNOTATORS = ("annotator1", "annotator2", "annotator3")


def _detect(row: Row) -> bool:
    return "response1" in row and "annotator1" in row and "instruction" in row


def _convert(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    # one real row has an empty instruction and the task in ``input``: the prompt is both together
    instruction = check_text(required(row, "instruction", where), "instruction", where, opts, allow_empty=True)
    extra = row.get("input")
    prompt = "\n\n".join(str(t) for t in (instruction, extra) if t not in (None, "") and str(t).strip())
    prompt = check_text(prompt, "instruction", where, opts, degenerate=True)
    a = check_text(required(row, "response1", where), "response1", where, opts, allow_empty=True)
    b = check_text(required(row, "response2", where), "response2", where, opts, allow_empty=True)
    models = str(row.get("cmp_key") or "").split("_", 1)
    model_a, model_b = (models[0], models[1]) if len(models) == 2 else (None, None)
    key = str(row["idx"]) if row.get("idx") is not None else None
    out = []
    for column in ANNOTATORS:
        if row.get(column) is None:
            continue
        label = label_of(row[column], VOTES, column, where)
        out.append(
            with_options(
                make_pair(
                    prompt,
                    a,
                    b,
                    label,
                    where,
                    field_b="response2",
                    model_a=model_a,
                    model_b=model_b,
                    annotator=f"pandalm:{column}",
                    label_key=key,
                ),
                opts,
            )
        )
    if not out:
        required(row, "annotator1", where)
    return out


ADAPTERS = [
    Adapter("pandalm", "PandaLM test set: JSON array, annotator1..3 each 0 = tie, 1/2 = response1/2", _detect, _convert)
]
