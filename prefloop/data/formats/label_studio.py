"""Label Studio exports: JSON (tasks with annotations) and JSON_MIN (one flat row per annotation).

Both are JSON arrays. Pair texts are read from the task data under prefloop's own names
(``prompt``, ``left``, ``right``: what ``prefloop sync`` pushes, see
``templates/label_studio.xml``), or ``prompt`` + ``response_a`` / ``response_b``, or the
Pairwise template's ``text1`` / ``text2``. Verdicts are read from:

* a Choices control (prefloop's ``preference``: values ``a`` / ``b`` / ``tie`` by alias, or
  their display text "A is better", "B is better", "Tie"; also Left/Right, A/B);
* a Pairwise control: ``{"selected": "left" | "right"}``.

A verdict is stated against the texts as the annotator saw them (left = response_a), so
no un-swapping is needed: the store orients every pair itself. ``completed_by`` (JSON) or
``annotator`` (JSON_MIN) is the annotator; ``was_cancelled`` is a skip; ``lead_time`` is
kept with the label. prefloop's optional ``strength`` rating, ``rationale`` text and
``dim_<name>`` choices come along; predictions (a model's guess) are never labels.
"""

from __future__ import annotations

from typing import Any

from prefloop.data.fields import ShapeOptions, Where, check_text, make_pair
from prefloop.data.formats.base import Adapter, Row, number, with_options
from prefloop.errors import RowProblem
from prefloop.types import Choice, PairRecord

__all__ = ["ADAPTERS", "VERDICTS"]

VERDICTS = {
    "a": Choice.A,
    "a is better": Choice.A,
    "left": Choice.A,
    "response a": Choice.A,
    "first": Choice.A,
    "b": Choice.B,
    "b is better": Choice.B,
    "right": Choice.B,
    "response b": Choice.B,
    "second": Choice.B,
    "tie": Choice.TIE,
    "equal": Choice.TIE,
    "both": Choice.TIE,
}
_TEXTS = (("prompt", "left", "right"), ("prompt", "response_a", "response_b"), ("prompt", "text1", "text2"))
_TEXT_NAMES = {name for names in _TEXTS for name in names}
_META = {
    "id",
    "annotator",
    "annotation_id",
    "created_at",
    "updated_at",
    "lead_time",
    "was_cancelled",
    "strength",
    "rationale",
    "prompt",
    "left",
    "right",
    "response_a",
    "response_b",
    "text1",
    "text2",
    "pair_key",
    "swapped",
    "strategy",
    "score",
    "model_version",
    "data",
    "annotations",
    "predictions",
}


def _texts(data: Row, where: Where, opts: ShapeOptions) -> tuple[str, str, str]:
    for p, a, b in _TEXTS:
        if a in data and b in data:
            prompt = data.get(p) or ""
            return (
                check_text(prompt, p, where, opts, allow_empty=True),
                check_text(data[a], a, where, opts, degenerate=True),
                check_text(data[b], b, where, opts, degenerate=True),
            )
    raise RowProblem(
        where[0],
        where[1],
        "data",
        "no pair texts: expected left/right, response_a/response_b or text1/text2 (map others with --map)",
    )


def _verdict(value: Any, name: str, where: Where, table: dict[str, Choice]) -> Choice | None:
    if isinstance(value, dict):
        if "selected" in value:
            value = value["selected"]
        elif "choices" in value:
            value = value["choices"]
        else:
            return None
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    choice = table.get(str(value).strip().lower())
    if choice is None:
        raise RowProblem(
            where[0],
            where[1],
            name,
            f"unknown choice {value!r}; expected A/B/Tie or left/right, "
            "or say what it means with --label-map, e.g. --label-map 'Response 1=a,Response 2=b'",
        )
    return choice


def _labels(
    values: dict[str, Any],
    texts: tuple[str, str, str],
    who: str,
    cancelled: bool,
    key: str,
    raw: dict[str, Any],
    where: Where,
    opts: ShapeOptions,
) -> list[PairRecord]:
    """The labels one annotation gives: skip if cancelled, else the overall verdict and each dimension."""
    prompt, a, b = texts
    table = {**VERDICTS, **{str(k).strip().lower(): v for k, v in (opts.label_map or {}).items()}}
    common: dict[str, Any] = {"annotator": who, "label_raw": raw}
    if cancelled:
        return [make_pair(prompt, a, b, Choice.SKIP, where, label_key=key, **common)]
    out = []
    rating = values.get("strength")
    strength = number(rating.get("rating") if isinstance(rating, dict) else rating, "strength", where)
    rationale = values.get("rationale")
    if isinstance(rationale, dict):
        rationale = "\n".join(rationale.get("text") or [])
    for name, value in values.items():
        if name == "preference" or (
            name not in _META
            and not name.startswith("dim_")
            and isinstance(value, dict | str)
            and _pairwise(value, table)
        ):
            choice = _verdict(value, name, where, table)
            if choice is not None:
                out.append(
                    make_pair(
                        prompt,
                        a,
                        b,
                        choice,
                        where,
                        label_key=key,
                        strength=strength,
                        rationale=str(rationale).strip() or None if rationale else None,
                        **common,
                    )
                )
        elif name.startswith("dim_"):
            choice = _verdict(value, name, where, table)
            if choice is not None:
                out.append(
                    make_pair(prompt, a, b, choice, where, label_key=f"{key}:{name[4:]}", dimension=name[4:], **common)
                )
    return [with_options(r, opts) for r in out]


def _pairwise(value: Any, table: dict[str, Choice]) -> bool:
    """A control's value that is a verdict (Choices or Pairwise), not another tag's output."""
    if isinstance(value, dict):
        return "selected" in value or "choices" in value
    return str(value).strip().lower() in table


def _is_json(row: Row) -> bool:
    return isinstance(row.get("annotations"), list) and isinstance(row.get("data"), dict)


def _json(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    texts = _texts({**row["data"], **{k: row[k] for k in _TEXT_NAMES if k in row}}, where, opts)  # --map lands on top
    out: list[PairRecord] = []
    for ann in row["annotations"]:
        who = ann.get("completed_by")
        if isinstance(who, dict):
            who = who.get("email") or who.get("id")
        values = {r.get("from_name"): r.get("value", {}) for r in ann.get("result") or []}
        raw = {"lead_time": ann.get("lead_time"), "annotation_id": ann.get("id"), "task_id": row.get("id")}
        out.extend(
            _labels(
                values,
                texts,
                f"label-studio:{who}",
                bool(ann.get("was_cancelled")),
                f"ls:{ann.get('id')}",
                raw,
                where,
                opts,
            )
        )
    if not out:  # not annotated yet (predictions at most): a pair for the pool, unlabeled
        out.append(make_pair(*texts, None, where))
    return out


def _is_min(row: Row) -> bool:
    return "annotation_id" in row and ("annotator" in row or "lead_time" in row)


def _min(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    texts = _texts(row, where, opts)
    values = {k: v for k, v in row.items() if k not in _META or k in ("strength", "rationale")}
    raw = {"lead_time": row.get("lead_time"), "annotation_id": row.get("annotation_id"), "task_id": row.get("id")}
    return _labels(
        values,
        texts,
        f"label-studio:{row.get('annotator')}",
        bool(row.get("was_cancelled")),
        f"ls:{row.get('annotation_id')}",
        raw,
        where,
        opts,
    )


ADAPTERS = [
    Adapter("label-studio", "Label Studio JSON export: tasks with annotations (choices or pairwise)", _is_json, _json),
    Adapter("label-studio-min", "Label Studio JSON_MIN export: one flat row per annotation", _is_min, _min),
]
