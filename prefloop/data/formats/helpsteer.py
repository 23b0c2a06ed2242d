"""NVIDIA HelpSteer2 (preference subset) and HelpSteer3 (preference).

HelpSteer2 ``preference/preference.jsonl.gz``: ``prompt``, ``response_1``, ``response_2``,
``preference_strength``, ``preference_statement``, ``preference_elaboration``, ``split``.
The card defines ``preference_strength`` on -3..3: -3 "Response 1 is much better than
Response 2", -2 "Response 1 is better", -1 "Response 1 is slightly better", 0 "about the
same", 1 "Response 2 is slightly better", 2 "Response 2 is better", 3 "Response 2 is
much better". So the SIGN is the winner (negative: response_1, positive: response_2,
zero: tie) and the absolute value is the strength; the statement and elaboration are
the rationale.

HelpSteer3 preference: ``domain``, ``language``, ``context`` (a message list ending with
the user's turn), ``response1``, ``response2``, ``overall_preference`` (same -3..3 scale
and sign as above) and ``individual_preference``: one ``{score, reasoning, feedback1,
feedback2}`` per annotator. Each individual preference becomes one label (annotators are
anonymous; they are named by position, ``helpsteer3:annotator1`` ...) with its reasoning
as rationale; ``overall_preference`` is their aggregate, kept in the pair's metadata and
used as the one label only when a row has no individual preferences.
"""

from __future__ import annotations

from typing import Any

from prefloop.data.fields import ShapeOptions, Where, check_text, make_pair, render_messages
from prefloop.data.formats.base import Adapter, Row, number, required, with_options
from prefloop.errors import RowProblem
from prefloop.types import Choice, PairRecord

__all__ = ["ADAPTERS", "signed_preference"]


def signed_preference(value: Any, name: str, where: Where) -> tuple[Choice, float | None]:
    """(winner, strength) from a -3..3 score: negative = the first response better."""
    score = number(value, name, where)
    if score is None:
        raise RowProblem(where[0], where[1], name, "missing")
    if not -3 <= score <= 3:
        raise RowProblem(where[0], where[1], name, f"expected -3..3, got {score:g}")
    if score == 0:
        return Choice.TIE, None
    return (Choice.A if score < 0 else Choice.B), abs(score)


def _is_hs2(row: Row) -> bool:
    return "preference_strength" in row and "response_1" in row


def _hs2(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    prompt = check_text(required(row, "prompt", where), "prompt", where, opts, degenerate=True)
    a = check_text(required(row, "response_1", where), "response_1", where, opts, degenerate=True)
    b = check_text(required(row, "response_2", where), "response_2", where, opts, degenerate=True)
    label, strength = signed_preference(required(row, "preference_strength", where), "preference_strength", where)
    parts = [str(row[k]).strip() for k in ("preference_statement", "preference_elaboration") if row.get(k)]
    return [
        with_options(
            make_pair(
                prompt,
                a,
                b,
                label,
                where,
                field_b="response_2",
                strength=strength,
                rationale="\n\n".join(parts) or None,
            ),
            opts,
        )
    ]


def _is_hs3(row: Row) -> bool:
    return "overall_preference" in row and "response1" in row


def _hs3(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    context = required(row, "context", where)
    if isinstance(context, str):
        context = [{"role": "user", "content": context}]
    if not isinstance(context, list) or not all(isinstance(m, dict) for m in context):
        raise RowProblem(where[0], where[1], "context", "expected a list of {role, content} messages")
    prompt = check_text(render_messages(context), "context", where, opts, degenerate=True)
    a = check_text(required(row, "response1", where), "response1", where, opts, degenerate=True)
    b = check_text(required(row, "response2", where), "response2", where, opts, degenerate=True)
    overall, _ = signed_preference(required(row, "overall_preference", where), "overall_preference", where)
    meta = {
        "prompt_messages": context,
        "overall_preference": row.get("overall_preference"),
        "domain": row.get("domain"),
    }
    individual = row.get("individual_preference") or []
    if not individual:
        return [with_options(make_pair(prompt, a, b, overall, where, field_b="response2", metadata=meta), opts)]
    out = []
    for i, item in enumerate(individual, start=1):
        if not isinstance(item, dict):
            raise RowProblem(where[0], where[1], f"individual_preference.{i - 1}", "expected {score, reasoning}")
        label, strength = signed_preference(item.get("score"), f"individual_preference.{i - 1}.score", where)
        out.append(
            with_options(
                make_pair(
                    prompt,
                    a,
                    b,
                    label,
                    where,
                    field_b="response2",
                    strength=strength,
                    annotator=f"helpsteer3:annotator{i}",
                    metadata=meta,
                    rationale=(item.get("reasoning") or None),
                ),
                opts,
            )
        )
    return out


ADAPTERS = [
    Adapter(
        "helpsteer2", "HelpSteer2 preference: preference_strength -3..3, negative = response_1 better", _is_hs2, _hs2
    ),
    Adapter(
        "helpsteer3", "HelpSteer3 preference: message-list context, per-annotator individual_preference", _is_hs3, _hs3
    ),
]
