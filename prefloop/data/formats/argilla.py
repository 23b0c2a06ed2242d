"""Argilla 2.x exports, in the three layouts its SDK writes.

* flat (``dataset.to_hub`` / ``records.to_datasets()``, ``to_list(flatten=True)``): fields
  and metadata are columns; each question ``Q`` has ``Q.responses`` (values, one per
  user), ``Q.responses.users`` and ``Q.responses.status``, and ``Q.suggestion`` (+
  ``.score``, ``.agent``);
* nested (``records.to_list(flatten=False)``, ``records.to_json``): ``fields``, ``metadata``,
  ``responses`` = ``{Q: [{value, user_id, status}]}``, ``suggestions`` = ``{Q: {value, ...}}``;
* a ``to_disk`` folder: ``records.json`` (the nested layout) beside ``settings.json``.

prefloop's own dataset (``templates/argilla.json``) has fields ``prompt``, ``response_a``,
``response_b`` in the order SHOWN, a ``preference`` question (a / b / tie) stated against
that order, optional ``strength``, ``rationale`` and ``dimension_<name>`` questions. Since
a verdict is read against the texts as shown, the store's own orientation makes the
``swapped`` metadata unnecessary here.

Per user: a ``submitted`` response is a label, ``discarded`` is a skip, a ``draft`` is
ignored. A suggestion is a model's guess and is NEVER read as a human label.
"""

from __future__ import annotations

from typing import Any

from prefloop.data.fields import ShapeOptions, Where, check_text, make_pair
from prefloop.data.formats.base import Adapter, Row, label_of, number, with_options
from prefloop.errors import RowProblem
from prefloop.types import Choice, PairRecord

__all__ = ["ADAPTERS"]

VALUES = {"a": Choice.A, "b": Choice.B, "tie": Choice.TIE}
FIELDS = ("prompt", "response_a", "response_b")


def _is_flat(row: Row) -> bool:
    return any(str(k).endswith(".responses.users") for k in row)


def _is_nested(row: Row) -> bool:
    return (
        isinstance(row.get("fields"), dict)
        and isinstance(row.get("responses"), dict | type(None))
        and "responses" in row
    )


def _responses_flat(row: Row) -> dict[str, list[dict[str, Any]]]:
    """Flat columns regrouped as the nested layout: {question: [{value, user_id, status}]}."""
    out: dict[str, list[dict[str, Any]]] = {}
    for column in row:
        if not str(column).endswith(".responses"):
            continue
        question = column[: -len(".responses")]
        values = row.get(column) or []
        users = row.get(f"{column}.users") or []
        status = row.get(f"{column}.status") or []
        out[question] = [
            {"value": v, "user_id": u, "status": s} for v, u, s in zip(values, users, status, strict=False)
        ]
    return out


def _labels(
    fields: Row, responses: dict[str, list[dict[str, Any]]], record_id: Any, where: Where, opts: ShapeOptions
) -> list[PairRecord]:
    prompt = check_text(fields.get("prompt"), "prompt", where, opts, degenerate=True)
    a = check_text(fields.get("response_a"), "response_a", where, opts, degenerate=True)
    b = check_text(fields.get("response_b"), "response_b", where, opts, degenerate=True)
    by_user: dict[str, dict[str, Any]] = {}
    for question, items in responses.items():
        for item in items or []:
            user = str(item.get("user_id"))
            entry = by_user.setdefault(user, {"status": item.get("status"), "values": {}})
            entry["values"][question] = item.get("value")
    out = []
    for user, entry in by_user.items():
        status, values = entry["status"], entry["values"]
        common: dict[str, Any] = {
            "annotator": f"argilla:{user}",
            "label_raw": {"record_id": record_id, "status": status},
        }
        key = f"argilla:{record_id}:{user}"
        if status == "discarded":
            out.append(make_pair(prompt, a, b, Choice.SKIP, where, label_key=key, **common))
            continue
        if status != "submitted":  # drafts are unfinished work, not judgements
            continue
        if values.get("preference") is not None:
            rationale = values.get("rationale")
            out.append(
                make_pair(
                    prompt,
                    a,
                    b,
                    label_of(values["preference"], VALUES, "preference.responses", where),
                    where,
                    label_key=key,
                    strength=number(values.get("strength"), "strength", where),
                    rationale=str(rationale).strip() or None if rationale else None,
                    **common,
                )
            )
        for question, value in values.items():
            if question.startswith("dimension_") and value is not None:
                dimension = question[len("dimension_") :]
                out.append(
                    make_pair(
                        prompt,
                        a,
                        b,
                        label_of(value, VALUES, f"{question}.responses", where),
                        where,
                        label_key=f"{key}:{dimension}",
                        dimension=dimension,
                        **common,
                    )
                )
    if not out:  # nobody has judged it yet (drafts, a suggestion at most): a pair for the pool, unlabeled
        out.append(make_pair(prompt, a, b, None, where))
    return [with_options(r, opts) for r in out]


def _flat(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    return _labels(row, _responses_flat(row), row.get("id"), where, opts)


def _nested(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    responses = row.get("responses") or {}
    if not all(isinstance(v, list) for v in responses.values()):
        raise RowProblem(where[0], where[1], "responses", "expected {question: [{value, user_id, status}]}")
    fields = {**row["fields"], **{k: row[k] for k in FIELDS if k in row}}  # --map renames land at the top
    return _labels(fields, responses, row.get("id"), where, opts)


ADAPTERS = [
    Adapter("argilla", "Argilla 2.x flat export (to_hub / to_datasets): Q.responses, .users, .status", _is_flat, _flat),
    Adapter(
        "argilla-records",
        "Argilla 2.x nested records (to_list(flatten=False), to_disk records.json)",
        _is_nested,
        _nested,
    ),
]
