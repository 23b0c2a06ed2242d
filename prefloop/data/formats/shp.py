"""Stanford Human Preferences (stanfordnlp/SHP, SHP-2).

Columns: ``post_id``, ``domain``, ``history`` (the Reddit post: the prompt),
``human_ref_A`` / ``human_ref_B`` (two top-level comments), ``score_A`` / ``score_B``
(their net upvotes), ``labels``, ``score_ratio``, ``c_root_id_A`` / ``c_root_id_B``.
``labels`` = 1 means comment A (``human_ref_A``) is preferred, 0 means B — the opposite
of the 0 = first convention a generic mapper would guess, which is why SHP has an adapter.
The preference is inferred from upvotes by the dataset authors, so the label's strength
is ``score_ratio`` (preferred score / other score, >= 2 by construction).
"""

from __future__ import annotations

from prefloop.data.fields import ShapeOptions, Where, check_text, make_pair
from prefloop.data.formats.base import Adapter, Row, label_of, number, required, with_options
from prefloop.types import Choice, PairRecord

__all__ = ["ADAPTERS"]

LABELS = {1: Choice.A, 0: Choice.B}


def _detect(row: Row) -> bool:
    return "human_ref_A" in row and "human_ref_B" in row


def _convert(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    prompt = check_text(required(row, "history", where), "history", where, opts, degenerate=True)
    a = check_text(required(row, "human_ref_A", where), "human_ref_A", where, opts, degenerate=True)
    b = check_text(required(row, "human_ref_B", where), "human_ref_B", where, opts, degenerate=True)
    label = label_of(required(row, "labels", where), LABELS, "labels", where)
    ratio = number(row.get("score_ratio"), "score_ratio", where)
    if ratio is None:
        sa, sb = number(row.get("score_A"), "score_A", where), number(row.get("score_B"), "score_B", where)
        if sa and sb:
            ratio = max(sa, sb) / min(sa, sb)
    key = "|".join(str(row.get(k)) for k in ("post_id", "c_root_id_A", "c_root_id_B")) if "post_id" in row else None
    return [
        with_options(
            make_pair(
                prompt,
                a,
                b,
                label,
                where,
                field_b="human_ref_B",
                strength=ratio,
                label_key=key,
                metadata={"domain": row.get("domain")},
            ),
            opts,
        )
    ]


ADAPTERS = [
    Adapter("shp", "Stanford SHP: labels = 1 means human_ref_A preferred; history is the prompt", _detect, _convert)
]
