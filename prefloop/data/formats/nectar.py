"""Nectar (berkeley-nest/Nectar): one prompt, seven ranked answers.

Columns: ``prompt`` (an HH-style dialogue ending in ``Assistant:``), ``answers`` (a list of
``{"answer": text, "model": name, "rank": n}``), ``turns``, ``num_responses``, ``source``,
``good_natured``. Rank 1 is the BEST answer (GPT-4 ranked them 1..7). Every pair of
answers becomes a pair labeled by rank (lower wins, equal ranks tie); the texts are
stored, never the dicts. ``--max-pairs-per-prompt`` caps the 21 pairs of 7 answers.
"""

from __future__ import annotations

import itertools
from typing import Any

from prefloop.data.fields import ShapeOptions, Where, check_text, make_pair
from prefloop.data.formats.base import Adapter, Row, number, required, with_options
from prefloop.errors import DegenerateRow, RowProblem
from prefloop.types import Choice, PairRecord, content_hash

__all__ = ["ADAPTERS"]


def _detect(row: Row) -> bool:
    answers = row.get("answers")
    return isinstance(answers, list) and bool(answers) and isinstance(answers[0], dict) and "answer" in answers[0]


def _convert(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    prompt = check_text(required(row, "prompt", where), "prompt", where, opts, degenerate=True)
    answers = required(row, "answers", where)
    ranked = []
    for i, item in enumerate(answers):
        if not isinstance(item, dict):
            raise RowProblem(where[0], where[1], f"answers.{i}", "expected {answer, model, rank}")
        text = check_text(item.get("answer"), f"answers.{i}.answer", where, opts, degenerate=True)
        rank = number(item.get("rank"), f"answers.{i}.rank", where)
        ranked.append((text, rank, item.get("model")))
    pairs: list[PairRecord] = []
    first: dict[str, tuple[str, float | None, Any]] = {}
    for r in ranked:
        first.setdefault(r[0].strip(), r)  # the first answer with each text, in order
    unique = list(first.values())
    if len(unique) < 2:
        raise DegenerateRow(where[0], where[1], "answers", "fewer than two distinct answers")
    for (ta, ra, ma), (tb, rb, mb) in itertools.combinations(unique, 2):
        label = None if ra is None or rb is None else Choice.TIE if ra == rb else Choice.A if ra < rb else Choice.B
        pairs.append(
            with_options(
                make_pair(
                    prompt,
                    ta,
                    tb,
                    label,
                    where,
                    model_a=ma,
                    model_b=mb,
                    metadata={"ranks": {content_hash(ta): ra, content_hash(tb): rb}},
                ),
                opts,
            )
        )
        if opts.max_pairs_per_prompt and len(pairs) >= opts.max_pairs_per_prompt:
            break
    return pairs


ADAPTERS = [
    Adapter("nectar", "Nectar: answers [{answer, model, rank}], rank 1 = best, every pair labeled", _detect, _convert)
]
