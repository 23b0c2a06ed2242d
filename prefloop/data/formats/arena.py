"""LMSYS Chatbot Arena: the conversations release and the arena-human-preference-55k release.

* ``chatbot-arena`` (lmsys/chatbot_arena_conversations): ``question_id``, ``model_a``,
  ``model_b``, ``winner`` (``model_a``, ``model_b``, ``tie``, ``tie (bothbad)``), ``judge``
  (the voter: our annotator), ``conversation_a`` / ``conversation_b`` (message lists with
  roles, possibly several turns), ``turn``, ``language``, ``anony``, ``tstamp``.
* ``arena-55k`` (lmsys/lmsys-arena-human-preference-55k, the Kaggle data): ``id``,
  ``model_a``, ``model_b``, ``prompt`` / ``response_a`` / ``response_b`` as JSON-ENCODED
  lists of strings (one per turn; a response may be ``null``), and one-hot
  ``winner_model_a`` / ``winner_model_b`` / ``winner_tie``. No voter is named.

The prompt is the shared opening of the two conversations; each response is the rest of
its conversation with roles kept (``\\n\\nAssistant: ...\\n\\nUser: ...``), and the message
lists are stored so ``export`` can give them back. ``tie (bothbad)`` is a tie whose
rationale says both were bad.
"""

from __future__ import annotations

import json
from typing import Any

from prefloop.data.fields import (
    ShapeOptions,
    Where,
    check_text,
    conversation_metadata,
    make_pair,
    render_messages,
    split_conversations,
)
from prefloop.data.formats.base import Adapter, Row, label_of, number, required, with_options
from prefloop.errors import RowProblem
from prefloop.types import Choice, PairRecord

__all__ = ["ADAPTERS"]

WINNERS = {"model_a": Choice.A, "model_b": Choice.B, "tie": Choice.TIE, "tie (bothbad)": Choice.TIE}


def _messages(value: Any, name: str, where: Where) -> list[dict[str, Any]]:
    if isinstance(value, str):
        value = json.loads(value) if value.lstrip().startswith("[") else value
    if not isinstance(value, list) or not all(isinstance(m, dict) and "content" in m for m in value):
        raise RowProblem(where[0], where[1], name, "expected a list of {role, content} messages")
    return [{"role": str(m.get("role", "user")), "content": m.get("content") or ""} for m in value]


def _pair(
    prompt_msgs: list[dict[str, Any]],
    conv_a: list[dict[str, Any]],
    conv_b: list[dict[str, Any]],
    label: Choice | None,
    where: Where,
    opts: ShapeOptions,
    **extras: Any,
) -> PairRecord:
    prompt_msgs2, rest_a, rest_b = split_conversations(conv_a, conv_b)
    prompt_msgs = prompt_msgs or prompt_msgs2
    prompt = check_text(render_messages(prompt_msgs), "prompt", where, opts, degenerate=True)
    a = check_text(render_messages(rest_a).strip(), "conversation_a", where, opts, degenerate=True)
    b = check_text(render_messages(rest_b).strip(), "conversation_b", where, opts, degenerate=True)
    meta = conversation_metadata(prompt_msgs, rest_a, a, rest_b, b)
    return with_options(make_pair(prompt, a, b, label, where, field_b="conversation_b", metadata=meta, **extras), opts)


def _is_conversations(row: Row) -> bool:
    return "conversation_a" in row and "conversation_b" in row and "winner" in row


def _conversations(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    winner = str(required(row, "winner", where)).strip()
    label = label_of(winner, WINNERS, "winner", where)
    conv_a = _messages(required(row, "conversation_a", where), "conversation_a", where)
    conv_b = _messages(required(row, "conversation_b", where), "conversation_b", where)
    judge = row.get("judge")
    qid = row.get("question_id")
    return [
        _pair(
            [],
            conv_a,
            conv_b,
            label,
            where,
            opts,
            annotator=str(judge) if judge else None,
            rationale="both bad" if winner == "tie (bothbad)" else None,
            model_a=row.get("model_a"),
            model_b=row.get("model_b"),
            label_key=str(qid) if qid is not None else None,
        )
    ]


def _is_55k(row: Row) -> bool:
    return "winner_model_a" in row and "winner_model_b" in row


def _turns(value: Any, name: str, where: Where) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RowProblem(where[0], where[1], name, "expected a JSON-encoded list of turns") from None
    if not isinstance(value, list):
        raise RowProblem(where[0], where[1], name, "expected a list of turns")
    return ["" if t is None else str(t) for t in value]


def _onehot(row: Row, where: Where) -> Choice:
    flags = {
        c: number(row.get(f"winner_{n}"), f"winner_{n}", where)
        for c, n in ((Choice.A, "model_a"), (Choice.B, "model_b"), (Choice.TIE, "tie"))
    }
    hot = [c for c, v in flags.items() if v]
    if len(hot) != 1:
        raise RowProblem(
            where[0],
            where[1],
            "winner_model_a",
            f"exactly one of winner_model_a/winner_model_b/winner_tie must be 1, found {len(hot)}",
        )
    return hot[0]


def _55k(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    prompts = _turns(required(row, "prompt", where), "prompt", where)
    resp_a = _turns(required(row, "response_a", where), "response_a", where)
    resp_b = _turns(required(row, "response_b", where), "response_b", where)

    def conversation(responses: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, question in enumerate(prompts):
            out.append({"role": "user", "content": question})
            out.append({"role": "assistant", "content": responses[i] if i < len(responses) else ""})
        return out

    rid = row.get("id")
    return [
        _pair(
            [],
            conversation(resp_a),
            conversation(resp_b),
            _onehot(row, where),
            where,
            opts,
            model_a=row.get("model_a"),
            model_b=row.get("model_b"),
            label_key=str(rid) if rid is not None else None,
        )
    ]


ADAPTERS = [
    Adapter(
        "chatbot-arena",
        "Chatbot Arena conversations: winner incl. tie (bothbad), judge = annotator",
        _is_conversations,
        _conversations,
    ),
    Adapter(
        "arena-55k", "arena-human-preference-55k: one-hot winner_model_a/_b/_tie, JSON-encoded turns", _is_55k, _55k
    ),
]
