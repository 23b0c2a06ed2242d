"""PKU-SafeRLHF (PKU-Alignment/PKU-SafeRLHF): two preferences from one row.

Columns: ``prompt``, ``response_0``, ``response_1``, ``is_response_0_safe``,
``is_response_1_safe``, ``better_response_id`` (0 or 1: the more HELPFUL response) and
``safer_response_id`` (0 or 1: the more HARMLESS response), plus sources and harm
categories. Each row gives two labels on the same pair: dimension ``helpful`` from
``better_response_id`` and dimension ``harmless`` from ``safer_response_id``.
"""

from __future__ import annotations

from prefloop.data.fields import ShapeOptions, Where, check_text, make_pair
from prefloop.data.formats.base import Adapter, Row, label_of, required
from prefloop.types import Choice, PairRecord, content_hash

__all__ = ["ADAPTERS"]

IDS = {0: Choice.A, 1: Choice.B}
DIMENSIONS = (("better_response_id", "helpful"), ("safer_response_id", "harmless"))


def _detect(row: Row) -> bool:
    return "better_response_id" in row and "response_0" in row


def _convert(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    prompt = check_text(required(row, "prompt", where), "prompt", where, opts, degenerate=True)
    a = check_text(required(row, "response_0", where), "response_0", where, opts, degenerate=True)
    b = check_text(required(row, "response_1", where), "response_1", where, opts, degenerate=True)
    # keyed by content hash: the store may put the two responses in the other order
    meta = {"safe": {content_hash(a): row.get("is_response_0_safe"), content_hash(b): row.get("is_response_1_safe")}}
    out = []
    for column, dimension in DIMENSIONS:
        if row.get(column) is None:
            continue
        label = label_of(row[column], IDS, column, where)
        out.append(
            make_pair(
                prompt,
                a,
                b,
                label,
                where,
                field_b="response_1",
                dimension=dimension,
                annotator=opts.annotator,
                metadata=meta,
                model_a=row.get("response_0_source"),
                model_b=row.get("response_1_source"),
            )
        )
    if not out:
        required(row, "better_response_id", where)
    return out


ADAPTERS = [
    Adapter(
        "pku-saferlhf", "PKU-SafeRLHF: better_response_id -> helpful, safer_response_id -> harmless", _detect, _convert
    )
]
