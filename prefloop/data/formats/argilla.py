"""Argilla 2.x exports of any pairwise dataset, in the three layouts its SDK writes.

* flat (``dataset.to_hub``'s ``data/train-*.parquet``, ``records.to_datasets()`` saved with
  ``save_to_disk``, ``to_list(flatten=True)``): fields and metadata are columns; each question
  ``Q`` has ``Q.responses`` (values, one per user), ``Q.responses.users`` and
  ``Q.responses.status``, and ``Q.suggestion`` (+ ``.score``, ``.agent``);
* nested (``to_disk``'s ``records.json``, ``to_list(flatten=False)``): ``fields``, ``metadata``,
  ``responses`` = ``{Q: [{value, user_id[, status]}]}``, ``suggestions``;
* ``to_hub`` and ``to_disk`` folders carry ``.argilla/settings.json``: the fields and the
  questions with their options, read when present (``opts.extra["argilla_settings"]``).

The texts are the dataset's fields, whatever their names: the fields that label options name
(``response_a`` / ``response_b``), else two fields that differ only in a last 1/2 or a/b,
and the prompt-like field (``tool_fields``). Verdicts, per user:

* a LabelQuestion whose option values or texts name a side: a field name, "A" / "B",
  "Response 1", "tie" (``--label-map`` for odd ones). ``preference`` (else the first such
  question) is the overall label, each other one a dimension named after it
  (``dimension_<name>`` gives ``<name>``);
* with no such question, a RankingQuestion over the two responses (better rank wins), or a
  RatingQuestion per response (``rating_response_a`` / ``rating_1``...: higher wins);
* a ``strength`` rating and a TextQuestion (the rationale) come along.

Only ``submitted`` responses are labels; ``discarded`` is a skip; drafts are ignored;
suggestions are a model's guesses and are NEVER labels. ``to_disk`` drops each response's
status: its responses are read as submitted (the report's format says ``argilla-records``).
"""

from __future__ import annotations

from typing import Any

from prefloop.data.fields import UNREAD, ShapeOptions, Where, check_text, make_pair
from prefloop.data.formats.base import Adapter, Row, number, with_options
from prefloop.data.formats.tool_fields import TextKeys, find_prompt, find_responses, label_table, side_token, verdict_of
from prefloop.errors import RowProblem
from prefloop.types import Choice, PairRecord

__all__ = ["ADAPTERS", "Questions", "record_labels"]

_META = {"id", "status", "_server_id", "inserted_at", "updated_at", "external_id"}
_SUFFIXES = (
    ".responses",
    ".responses.users",
    ".responses.status",
    ".suggestion",
    ".suggestion.score",
    ".suggestion.agent",
)


class Questions:
    """The dataset's questions and fields: from ``settings.json`` where present, else from the responses seen."""

    def __init__(self, settings: dict[str, Any] | None) -> None:
        self.kind: dict[str, str] = {}
        self.options: dict[str, dict[str, str]] = {}  # question -> option value -> option text
        self.fields: list[str] = []
        for q in (settings or {}).get("questions") or []:
            qs = q.get("settings") or {}
            self.kind[q["name"]] = str(qs.get("type") or "")
            self.options[q["name"]] = {str(o.get("value")): str(o.get("text") or "") for o in qs.get("options") or []}
        self.fields = [f["name"] for f in (settings or {}).get("fields") or [] if "name" in f]

    def kind_of(self, question: str, value: Any) -> str:
        if question in self.kind:
            return self.kind[question]
        if isinstance(value, list):  # [{value, rank}] (the API) or the values in order (the SDK's export)
            ranked = all(isinstance(v, dict) and "rank" in v for v in value) or len(value) >= 2
            return "ranking" if value and ranked else "multi_label"
        if isinstance(value, int | float) and not isinstance(value, bool):
            return "rating"
        return "label_selection"

    def hints(self, responses: dict[str, list[dict[str, Any]]]) -> list[str]:
        """Field names the label / ranking options name, in option order (settings first, else values seen)."""
        out = [
            v for q, opts in self.options.items() if self.kind.get(q) in ("label_selection", "ranking") for v in opts
        ]
        for items in responses.values():
            for item in items or []:
                value = item.get("value")
                values = value if isinstance(value, list) else [value]
                out += [str(v.get("value") if isinstance(v, dict) else v) for v in values if v is not None]
        return out


def _verdict(value: Any, question: str, qs: Questions, keys: TextKeys, table: dict[str, Choice]) -> Choice | None:
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    if value is None:
        return None
    choice = verdict_of(value, keys, table)
    text = qs.options.get(question, {}).get(str(value))
    if choice is None and text:
        choice = verdict_of(text, keys, table)
    return choice


def _ranked(value: Any, keys: TextKeys, table: dict[str, Choice]) -> Choice | None:
    """A ranking of the two responses: [{value, rank}] (the API) or [value, ...] in order (the SDK)."""
    if not isinstance(value, list):
        return None
    rank: dict[Choice, float] = {}
    for position, item in enumerate(value):
        name = item.get("value") if isinstance(item, dict) else item
        side = verdict_of(name, keys, table)
        if side in (Choice.A, Choice.B):
            given = item.get("rank") if isinstance(item, dict) else None
            rank[side] = float(given) if given is not None else float(position)
    if len(rank) != 2:
        return None
    return Choice.TIE if rank[Choice.A] == rank[Choice.B] else min(rank, key=lambda c: rank[c])


def _rated(values: dict[str, Any], qs: Questions, keys: TextKeys, where: Where) -> Choice | None:
    """A rating per response, the question named after it (``rating_response_a``, ``score_1``): higher wins."""
    _, a, b = keys
    scores: dict[str, float] = {}
    for question, value in values.items():
        if qs.kind_of(question, value) != "rating" or question == "strength":
            continue
        low = question.lower()
        side = "a" if a.lower() in low else "b" if b.lower() in low else ""
        token = side_token(question)
        if not side and token:
            side = "a" if token == side_token(a) else "b" if token == side_token(b) else ""
        rating = number(value, question, where)
        if side and rating is not None:
            scores[side] = rating
    if len(scores) != 2:
        return None
    return Choice.TIE if scores["a"] == scores["b"] else Choice.A if scores["a"] > scores["b"] else Choice.B


def _user_verdicts(
    values: dict[str, Any], qs: Questions, keys: TextKeys, where: Where, opts: ShapeOptions
) -> tuple[list[tuple[str | None, Choice]], list[str]]:
    """(dimension or None, choice) for one user's submitted answers, and the questions not read."""
    table = label_table(opts.label_map)
    verdicts: list[tuple[str, Choice]] = []
    unread: list[str] = []
    for question, value in values.items():
        kind = qs.kind_of(question, value)
        if kind in ("label_selection", "multi_label_selection", "multi_label"):
            choice = _verdict(value, question, qs, keys, table)
            if choice is not None:
                verdicts.append((question, choice))
            elif question == "preference" or question.startswith("dimension_"):
                raise RowProblem(
                    where[0],
                    where[1],
                    f"{question}.responses",
                    f"unknown value {value!r}; expected a / b / tie, a field name, or say what it means "
                    "with --label-map, e.g. --label-map 'good=a,bad=b'",
                )
            elif value not in (None, [], ""):
                unread.append(question)
    if not verdicts:
        ranking = next((q for q, v in values.items() if qs.kind_of(q, v) == "ranking"), None)
        rated = _ranked(values[ranking], keys, table) if ranking else None
        rated = rated or _rated(values, qs, keys, where)
        if rated is not None:
            return [(None, rated)], []
        unread += [q for q, v in values.items() if qs.kind_of(q, v) in ("ranking", "rating") and q != "strength"]
    overall = next((q for q, _ in verdicts if q == "preference"), verdicts[0][0] if verdicts else None)
    return [(None if q == overall else q.removeprefix("dimension_"), c) for q, c in verdicts], unread


def record_labels(
    fields: Row,
    responses: dict[str, list[dict[str, Any]]],
    record_id: Any,
    where: Where,
    opts: ShapeOptions,
    layout: str = "fields",
) -> list[PairRecord]:
    """Every label of one record: its texts found in ``fields``, one entry per user."""
    qs = Questions(opts.extra.get("argilla_settings"))
    texts = {
        k: v
        for k, v in fields.items()
        if not qs.fields or k in qs.fields or k in ("prompt", "response_a", "response_b")
    }
    a, b = find_responses(texts, qs.hints(responses), where, field=layout)
    keys = (find_prompt(texts, a, b, where, field=layout), a, b)
    prompt = check_text(texts.get(keys[0]) if keys[0] else "", keys[0] or "prompt", where, opts, allow_empty=True)
    ta = check_text(texts.get(a), a, where, opts, degenerate=True)
    tb = check_text(texts.get(b), b, where, opts, degenerate=True)
    by_user: dict[str, dict[str, Any]] = {}
    for question, items in responses.items():
        for item in items or []:
            entry = by_user.setdefault(
                str(item.get("user_id")), {"status": item.get("status", "submitted"), "values": {}, "at": {}}
            )
            entry["values"][question] = item.get("value")
            for stamp in ("inserted_at", "updated_at"):
                if item.get(stamp):
                    entry["at"][stamp] = max(entry["at"].get(stamp, ""), str(item[stamp]))
    out = []
    for user, entry in by_user.items():
        status, values = entry["status"], entry["values"]
        common: dict[str, Any] = {
            "annotator": f"argilla:{user}",
            "label_raw": {"record_id": record_id, "status": status, **entry["at"]},
        }
        key = f"argilla:{record_id}:{user}"
        if status == "discarded":
            out.append(make_pair(prompt, ta, tb, Choice.SKIP, where, label_key=key, **common))
            continue
        if status != "submitted":  # drafts are unfinished work, not judgements
            continue
        verdicts, unread = _user_verdicts(values, qs, keys, where, opts)
        rationale = next((v for q, v in values.items() if qs.kind.get(q) == "text" or q == "rationale"), None)
        for dimension, choice in verdicts:
            extra: dict[str, Any] = {}
            if dimension is None:
                extra = {
                    "strength": number(values.get("strength"), "strength", where),
                    "rationale": str(rationale).strip() or None if rationale else None,
                }
            out.append(
                make_pair(
                    prompt,
                    ta,
                    tb,
                    choice,
                    where,
                    label_key=key if dimension is None else f"{key}:{dimension}",
                    dimension=dimension,
                    **extra,
                    **common,
                )
            )
        if not verdicts and unread:
            out.append(make_pair(prompt, ta, tb, None, where, metadata={UNREAD: unread}))
    if not out:  # nobody has judged it yet (drafts, a suggestion at most): a pair for the pool, unlabeled
        out.append(make_pair(prompt, ta, tb, None, where))
    return [with_options(r, opts) for r in out]


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


def _flat(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    fields = {k: v for k, v in row.items() if k not in _META and not str(k).endswith(_SUFFIXES)}
    return record_labels(fields, _responses_flat(row), row.get("id"), where, opts, layout="columns")


def _nested(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    responses = row.get("responses") or {}
    if not all(isinstance(v, list) for v in responses.values()):
        raise RowProblem(where[0], where[1], "responses", "expected {question: [{value, user_id, status}]}")
    fields = {**row["fields"], **{k: row[k] for k in ("prompt", "response_a", "response_b") if k in row}}
    return record_labels(fields, responses, row.get("id"), where, opts)


ADAPTERS = [
    Adapter(
        "argilla",
        "Argilla 2.x flat export (to_hub folder, to_datasets saved): Q.responses, .users, .status",
        _is_flat,
        _flat,
    ),
    Adapter(
        "argilla-records",
        "Argilla 2.x nested records (to_disk folder's records.json, to_list(flatten=False))",
        _is_nested,
        _nested,
    ),
]
