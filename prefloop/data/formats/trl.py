"""HH-RLHF dialogues and TRL chosen/rejected preference rows.

* ``hh-rlhf`` (Anthropic/hh-rlhf): ``chosen`` and ``rejected`` are whole dialogues
  (``\\n\\nHuman: ... \\n\\nAssistant: ...``); the shared prefix up to the last shared
  ``Assistant:`` turn is the prompt, the two final turns are the responses, chosen wins.
  The real files hold rows whose chosen and rejected are identical: degenerate, skipped.
* ``trl``: TRL's preference format, ``chosen``/``rejected`` as texts or message lists with
  an explicit ``prompt`` (text or messages) or an implicit one (the shared messages).
  Message lists are kept, so ``export`` gives them back as message lists.
"""

from __future__ import annotations

from prefloop.data.fields import ShapeOptions, Where
from prefloop.data.formats.base import Adapter, Row
from prefloop.data.shapes import chosen_rejected, extras_of
from prefloop.types import PairRecord

__all__ = ["ADAPTERS"]


def _is_hh(row: Row) -> bool:
    chosen, rejected = row.get("chosen"), row.get("rejected")
    return (
        isinstance(chosen, str)
        and isinstance(rejected, str)
        and "prompt" not in row
        and "\n\nHuman:" in chosen
        and "\n\nAssistant:" in chosen
    )


def _is_trl(row: Row) -> bool:
    return "chosen" in row and "rejected" in row and "score_chosen" not in row


def _convert(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    return [chosen_rejected(row, where, opts, extras_of(row, where, opts), degenerate=True)]


ADAPTERS = [
    Adapter(
        "hh-rlhf",
        "Anthropic HH-RLHF: chosen/rejected whole dialogues, the shared prefix is the prompt",
        _is_hh,
        _convert,
    ),
    Adapter("trl", "TRL chosen/rejected: texts or message lists, explicit or implicit prompt", _is_trl, _convert),
]
