"""Label Studio exports of any pairwise project: JSON, JSON_MIN, CSV and TSV, as Label Studio writes them.

* JSON: one task per element, ``data`` (whatever keys the label config reads) and
  ``annotations`` (``result`` items with ``from_name``, ``to_name``, ``type``, ``value``);
* JSON_MIN, CSV, TSV: one flat row per annotation: the task's data keys, ``annotator``,
  ``annotation_id``, ``created_at``, ``updated_at``, ``lead_time`` and one column per control
  (``from_name``) holding its value (CSV/TSV: JSON-encoded when it is not a plain text).

The texts are found, whatever their names, from the results' ``to_name`` and the data keys
(``tool_fields.find_texts``): prefloop's own ``left`` / ``right``, the Pairwise template's
``text1`` / ``text2``, the RLHF template's ``prompt`` + ``answer1`` / ``answer2``, and so on;
``--map`` names them where that is ambiguous. Verdicts, stated against the texts as shown:

* a Pairwise control: ``{"selected": "left" | "right"}``, left being its first ``to_name``;
* a Choices control whose choice names a side or a tie (any wording: "A", "Answer 1",
  "Response B is better", "Both equal"; ``--label-map`` for odd ones). The control named
  ``preference`` (or else the first verdict control) is the overall label, each other one a
  dimension named after it (prefloop's ``dim_<name>`` gives ``<name>``);
* with no such control, a Rating per response (``to_name`` one response, or a name ending
  like it: ``rating1`` / ``rating2``): the higher rating wins, equal ratings tie;
* a Ranker over a List of items: every pair of ranked items, the better-ranked one winning.

``completed_by`` (an id, or the user object) / ``annotator`` (id or email) is the annotator;
``was_cancelled`` is a skip; ``lead_time``, ``created_at`` and ``updated_at`` are kept with the
label. Predictions and drafts are never labels. A prefloop ``strength`` rating and a TextArea
(the rationale) come along.
"""

from __future__ import annotations

import contextlib
import json
from itertools import combinations
from typing import Any

from prefloop.data.fields import UNREAD, ShapeOptions, Where, check_text, make_pair
from prefloop.data.formats.base import Adapter, Row, number, with_options
from prefloop.data.formats.tool_fields import (
    PROMPT_NAMES,
    TextKeys,
    find_prompt,
    find_responses,
    find_texts,
    label_table,
    side_token,
    verdict_of,
)
from prefloop.errors import RowProblem
from prefloop.types import Choice, PairRecord

__all__ = ["ADAPTERS", "Control", "read_annotation", "tag_keys", "task_records"]

# Columns of a flat export that are not data keys nor controls.
_MIN_META = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "was_cancelled", "drafts"}
_TASK_META = {"pair_key", "swapped", "strategy", "score", "model_version"}


class Control:
    """One result item of an annotation: which control, which tags it points at, its kind and value."""

    def __init__(self, name: str, to: list[str], kind: str, value: Any) -> None:
        self.name, self.to, self.kind, self.value = name, to, kind, value

    @classmethod
    def from_result(cls, item: dict[str, Any]) -> Control:
        to = [t.strip() for t in str(item.get("to_name") or "").split(",") if t.strip()]
        value = item.get("value") or {}
        kind = str(item.get("type") or "").lower() or _kind_of(value)
        return cls(str(item.get("from_name") or ""), to, kind, value)

    @classmethod
    def from_column(cls, name: str, value: Any) -> Control:
        """A flat export's column: the value alone (a choice text, a number, a dict), no ``to_name``."""
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if isinstance(value, dict):
            return cls(name, [], _kind_of(value), value)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return cls(name, [], _kind_of(value[0]), value[0])  # JSON_MIN's Pairwise: [{"selected": "left"}]
        if isinstance(value, list):
            return cls(name, [], "choices", {"choices": value})
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls(name, [], "rating", {"rating": value})
        return cls(name, [], "choices", {"choices": [value]})


def _kind_of(value: Any) -> str:
    for key, kind in (("selected", "pairwise"), ("choices", "choices"), ("rating", "rating"), ("ranker", "ranker")):
        if isinstance(value, dict) and key in value:
            return kind
    return "textarea" if isinstance(value, dict) and "text" in value else "other"


def _rationale(controls: list[Control]) -> str | None:
    texts = [
        str(t)
        for c in controls
        if c.kind == "textarea" and isinstance(c.value, dict)
        for t in (c.value.get("text") or [])
    ]
    joined = "\n".join(texts).strip()
    return joined or None


def _strength(controls: list[Control], keys: TextKeys, where: Where) -> float | None:
    for c in controls:
        if c.kind == "rating" and (c.name == "strength" or (keys[0] is not None and c.to == [keys[0]])):
            return number(c.value.get("rating"), c.name, where)
    return None


def _pairwise(c: Control, keys: TextKeys, where: Where) -> Choice:
    selected = str(c.value.get("selected", "")).strip().lower()
    if selected not in ("left", "right"):
        raise RowProblem(where[0], where[1], c.name, f"pairwise selection {selected!r}; expected left or right")
    left_is_b = bool(c.to) and c.to[0] == keys[2]
    return Choice.A if (selected == "left") != left_is_b else Choice.B


def _choices(c: Control, keys: TextKeys, table: dict[str, Choice]) -> Choice | None:
    picked = c.value.get("choices") if isinstance(c.value, dict) else None
    if not picked:
        return None
    meanings = {verdict_of(p, keys, table) for p in picked}
    return meanings.pop() if len(meanings) == 1 else None


def _by_ratings(controls: list[Control], keys: TextKeys, where: Where) -> Choice | None:
    """A rating per response (``to_name`` the response, or a name ending in its side): higher wins."""
    _, a, b = keys
    scores: dict[str, float] = {}
    for c in controls:
        if c.kind != "rating" or c.name == "strength":
            continue
        if c.to and c.to[0] in (a, b):
            side = "a" if c.to[0] == a else "b"
        else:
            token = side_token(c.name)
            side = "a" if token and token == side_token(a) else "b" if token and token == side_token(b) else ""
        rating = number(c.value.get("rating"), c.name, where)
        if side and rating is not None:
            scores[side] = rating
    if len(scores) != 2:
        return None
    return Choice.TIE if scores["a"] == scores["b"] else Choice.A if scores["a"] > scores["b"] else Choice.B


def read_annotation(
    controls: list[Control], keys: TextKeys, where: Where, opts: ShapeOptions
) -> tuple[list[tuple[str | None, Choice]], list[str]]:
    """The verdicts of one annotation: ``(dimension or None for overall, choice)``, and the controls not read."""
    table = label_table(opts.label_map)
    verdicts: list[tuple[str, Choice]] = []
    unread: list[str] = []
    for c in controls:
        if c.kind == "pairwise":
            verdicts.append((c.name, _pairwise(c, keys, where)))
        elif c.kind == "choices":
            choice = _choices(c, keys, table)
            if choice is not None:
                verdicts.append((c.name, choice))
            elif c.name == "preference" or c.name.startswith("dim_"):
                picked = c.value.get("choices") if isinstance(c.value, dict) else c.value
                raise RowProblem(
                    where[0],
                    where[1],
                    c.name,
                    f"unknown choice {picked!r}; expected A/B/Tie or left/right, or say what it means "
                    "with --label-map, e.g. --label-map 'Response 1=a,Response 2=b'",
                )
            else:
                unread.append(c.name)
    if not verdicts:
        rated = _by_ratings(controls, keys, where)
        if rated is not None:
            return [(None, rated)], []
        unread += [c.name for c in controls if c.kind == "rating" and c.name != "strength"]
    overall = next((n for n, _ in verdicts if n == "preference"), verdicts[0][0] if verdicts else None)
    out: list[tuple[str | None, Choice]] = [
        (None if name == overall else name.removeprefix("dim_"), choice) for name, choice in verdicts
    ]
    return out, unread


def _ranker_pairs(
    data: Row, controls: list[Control], prompt: str, where: Where, common: dict[str, Any], key: str
) -> list[PairRecord] | None:
    """A Ranker over a List: each pair of ranked items, the better-ranked one winning."""
    ranker = next((c for c in controls if c.kind == "ranker"), None)
    if ranker is None:
        return None
    items = next(
        (v for v in data.values() if isinstance(v, list) and v and all(isinstance(i, dict) and "id" in i for i in v)),
        None,
    )
    if items is None:
        raise RowProblem(where[0], where[1], ranker.name, "a Ranker result but no list of {id, body} items in the data")
    text = {str(i["id"]): str(i.get("body") or i.get("text") or i.get("html") or i.get("title") or "") for i in items}
    buckets = [b for name, b in (ranker.value.get("ranker") or {}).items() if name != "_" and isinstance(b, list)]
    rank = {
        str(item): (index if len(buckets) == 1 else bucket)
        for bucket, ids in enumerate(buckets)
        for index, item in enumerate(ids)
    }
    out = []
    for x, y in combinations([i for i in text if i in rank], 2):
        choice = Choice.TIE if rank[x] == rank[y] else Choice.A if rank[x] < rank[y] else Choice.B
        out.append(make_pair(prompt, text[x], text[y], choice, where, label_key=f"{key}:{x}:{y}", **common))
    return out


def _texts(data: Row, keys: TextKeys, where: Where, opts: ShapeOptions) -> tuple[str, str, str]:
    prompt_key, a, b = keys
    prompt = data.get(prompt_key) if prompt_key else ""
    return (
        check_text(prompt or "", prompt_key or "prompt", where, opts, allow_empty=True),
        check_text(data.get(a), a, where, opts, degenerate=True),
        check_text(data.get(b), b, where, opts, degenerate=True),
    )


def _annotation_records(
    data: Row,
    keys: TextKeys | None,
    controls: list[Control],
    meta: dict[str, Any],
    where: Where,
    opts: ShapeOptions,
) -> list[PairRecord]:
    """The labels of one annotation (``meta``: who, id, cancelled, lead_time and timestamps)."""
    key = f"ls:{meta['annotation_id']}"
    raw = {k: meta[k] for k in ("annotation_id", "task_id", "lead_time", "created_at", "updated_at") if k in meta}
    common: dict[str, Any] = {"annotator": f"label-studio:{meta['who']}", "label_raw": raw}
    if keys is None:  # a Ranker project: the items, not two data keys, are the texts
        texts = [k for k, v in data.items() if isinstance(v, str)]
        named = [k for name in PROMPT_NAMES for k in texts if k.lower() == name]  # "prompt" before "task"
        prompt_key = (named or texts)[0] if texts else None
        prompt = str(data.get(prompt_key) or "") if prompt_key else ""
        ranked = _ranker_pairs(data, controls, prompt, where, common, key) or []
        return [with_options(r, opts) for r in ranked]
    prompt, a, b = _texts(data, keys, where, opts)
    if meta.get("cancelled"):
        return [with_options(make_pair(prompt, a, b, Choice.SKIP, where, label_key=key, **common), opts)]
    verdicts, unread = read_annotation(controls, keys, where, opts)
    strength, rationale = _strength(controls, keys, where), _rationale(controls)
    out = []
    for dimension, choice in verdicts:
        extra: dict[str, Any] = {"strength": strength, "rationale": rationale} if dimension is None else {}
        out.append(
            make_pair(
                prompt,
                a,
                b,
                choice,
                where,
                label_key=key if dimension is None else f"{key}:{dimension}",
                dimension=dimension,
                **extra,
                **common,
            )
        )
    if not out and unread:  # an annotation that said something this reader could not read
        out.append(make_pair(prompt, a, b, None, where, metadata={UNREAD: unread}))
    return [with_options(r, opts) for r in out]


def _who(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("email") or value.get("id")
    return str(value)


def _is_ranker(annotations: list[dict[str, Any]]) -> bool:
    return any(str(r.get("type")) == "ranker" for a in annotations for r in a.get("result") or [])


def task_records(task: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    """Every label of one task of a JSON export (or of the API's task listing)."""
    data = {k: v for k, v in task["data"].items() if k not in _TASK_META}
    data.update({k: task[k] for k in ("prompt", "response_a", "response_b") if k in task})  # --map lands on top
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
    tags = tag_keys(opts.extra.get("label_studio_config"))  # a Text tag's name -> the data key it shows
    hints = [
        tags.get(t.strip(), t.strip())
        for a in annotations
        for r in a.get("result") or []
        for t in str(r.get("to_name") or "").split(",")
    ]
    if not annotations and tags:  # an unlabeled task: the config's Text tags, in order, are the hints
        hints = list(tags.values())
    keys = None if _is_ranker(annotations) else find_texts(data, hints, where)
    out: list[PairRecord] = []
    for ann in annotations:
        controls = [Control.from_result(r) for r in ann.get("result") or [] if isinstance(r, dict)]
        for c in controls:
            c.to = [tags.get(t, t) for t in c.to]
        meta = {
            "who": _who(ann.get("completed_by")),
            "annotation_id": ann.get("id"),
            "task_id": task.get("id"),
            "cancelled": bool(ann.get("was_cancelled")),
            "lead_time": ann.get("lead_time"),
            "created_at": ann.get("created_at"),
            "updated_at": ann.get("updated_at"),
        }
        out.extend(_annotation_records(data, keys, controls, meta, where, opts))
    if not out and keys is not None:  # not annotated yet (predictions at most): a pair for the pool, unlabeled
        out.append(make_pair(*_texts(data, keys, where, opts), None, where))
    return out


def tag_keys(config: str | None) -> dict[str, str]:
    """``{tag name: data key}`` of a label config's object tags (``<Text name="answer1" value="$answer1"/>``)."""
    if not config:
        return {}
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(config)
    except ET.ParseError:
        return {}
    return {
        str(el.get("name")): str(el.get("value"))[1:]
        for el in root.iter()
        if el.get("name") and str(el.get("value") or "").startswith("$")
    }


def _is_json(row: Row) -> bool:
    return isinstance(row.get("annotations"), list) and isinstance(row.get("data"), dict)


def _is_min(row: Row) -> bool:
    return "annotation_id" in row and ("annotator" in row or "lead_time" in row)


def _is_control_value(value: Any, keys_hint: TextKeys | None, table: dict[str, Choice]) -> bool:
    """A flat column that holds a control's output, not a task text."""
    if value is None or isinstance(value, dict | list | int | float):
        return True
    text = str(value)
    if text.lstrip()[:1] in ("{", "["):
        return True
    return keys_hint is not None and len(text) <= 40 and verdict_of(text, keys_hint, table) is not None


def _min(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    """One flat row (JSON_MIN, CSV, TSV): data keys and control columns side by side."""
    rest = {k: v for k, v in row.items() if k not in _MIN_META and k not in _TASK_META}
    table = label_table(opts.label_map)
    # The two responses first (from the names of the plainly textual columns); a column whose
    # text is a verdict about them ("Answer 1") is then a control's output, not the prompt.
    candidates = {k: v for k, v in rest.items() if isinstance(v, str) and not _is_control_value(v, None, table)}
    a, b = find_responses(candidates, [], where, field="columns")
    data = {
        k: v
        for k, v in candidates.items()
        if k in (a, b)
        or v in (candidates[a], candidates[b])  # the column a --map copied
        or any(name in k.lower() for name in PROMPT_NAMES)
        or not _is_control_value(v, (None, a, b), table)
    }
    keys = (find_prompt(data, a, b, where, field="columns"), a, b)
    controls = [Control.from_column(k, v) for k, v in rest.items() if k not in data and v not in (None, "")]
    meta = {
        "who": _who(row.get("annotator")),
        "annotation_id": row.get("annotation_id"),
        "task_id": row.get("id"),
        "cancelled": str(row.get("was_cancelled", "")).strip().lower() in ("true", "1"),
        "lead_time": number(row.get("lead_time"), "lead_time", where),
        "created_at": row.get("created_at"),
        "updated_at": row.get("updated_at"),
    }
    out = _annotation_records(data, keys, controls, meta, where, opts)
    return out or [make_pair(*_texts(data, keys, where, opts), None, where)]


ADAPTERS = [
    Adapter(
        "label-studio",
        "Label Studio JSON export: tasks with annotations (any pairwise project)",
        _is_json,
        task_records,
    ),
    Adapter("label-studio-min", "Label Studio JSON_MIN / CSV / TSV export: one flat row per annotation", _is_min, _min),
]
