"""UltraFeedback binarized (HuggingFaceH4/ultrafeedback_binarized and its TRL copies).

Columns: ``prompt`` (text), ``chosen`` / ``rejected`` (message lists: the user turn, then
the assistant's answer), ``score_chosen`` / ``score_rejected`` (GPT-4 ratings, 1-10).
The binarization picked the highest-rated answer as chosen and a random other as
rejected, so the two scores can be EQUAL: that is a tie, not a preference. Otherwise
chosen wins and the score difference is kept as the label's strength (the margin).
"""

from __future__ import annotations

from dataclasses import replace

from prefloop.data.fields import ShapeOptions, Where
from prefloop.data.formats.base import Adapter, Row, number, required, with_options
from prefloop.data.shapes import chosen_rejected, extras_of
from prefloop.types import Choice, PairRecord, content_hash

__all__ = ["ADAPTERS"]


def _detect(row: Row) -> bool:
    return "score_chosen" in row and "score_rejected" in row and "chosen" in row


def _convert(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    sc = number(required(row, "score_chosen", where), "score_chosen", where)
    sr = number(required(row, "score_rejected", where), "score_rejected", where)
    record = chosen_rejected(row, where, opts, extras_of(row, where, opts), degenerate=True)
    margin = (sc - sr) if sc is not None and sr is not None else None
    label = Choice.TIE if margin == 0 else Choice.A if margin is None or margin > 0 else Choice.B
    # keyed by content hash: the store may put the two responses in the other order
    meta = {**record.metadata, "scores": {content_hash(record.response_a): sc, content_hash(record.response_b): sr}}
    strength = abs(margin) if margin else None
    return [with_options(replace(record, label=label, strength=strength, metadata=meta), opts)]


ADAPTERS = [
    Adapter(
        "ultrafeedback", "UltraFeedback binarized: score_chosen/score_rejected, equal scores = tie", _detect, _convert
    )
]
