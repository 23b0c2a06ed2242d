"""Turning one input row of any supported shape into pairs.

Shapes recognised (after ``--map`` renames columns):

* explicit: ``prompt``, ``response_a``, ``response_b`` and optionally ``label``;
* TRL chosen/rejected with an explicit ``prompt`` (text or message list);
* TRL chosen/rejected with an implicit prompt: full HH dialogues whose shared prefix up
  to the last shared ``Assistant:`` turn is the prompt, the rest of each is a response;
* conversational: ``chosen``/``rejected`` message lists (the shared messages are the prompt);
* several responses per prompt: ``prompt`` + ``responses`` (+ optional ``scores``),
  expanded into candidate pairs (labeled from the scores when given).

A field that is present but empty is an error. A dialogue whose final assistant turn
exists but is empty is NOT (HH has one: the annotator preferred saying nothing).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from typing import Any

from prefloop.data.fields import (
    MISSING,
    ShapeOptions,
    check_text,
    conversation_metadata,
    get_path,
    make_pair,
    render_messages,
)
from prefloop.errors import DegenerateRow, RowProblem
from prefloop.types import Choice, PairRecord

__all__ = [
    "LABEL_LIKE",
    "ShapeOptions",
    "apply_mapping",
    "chosen_rejected",
    "decode_label",
    "extras_of",
    "parse_label",
    "row_to_pairs",
]

ASSISTANT = "\n\nAssistant:"

_LABELS: dict[str, Choice] = {}
for _choice, _spellings in {
    Choice.A: ("a", "A", "model_a", "response_a", "left", "first", "chosen_a", "a>b"),
    Choice.B: ("b", "B", "model_b", "response_b", "right", "second", "chosen_b", "b>a"),
    Choice.TIE: (
        "tie",
        "Tie",
        "TIE",
        "draw",
        "equal",
        "both",
        "tie (bothbad)",
        "tie (both bad)",
        "tie(bothbad)",
        "both_bad",
        "both_good",
        "a=b",
    ),
}.items():
    for _s in _spellings:
        _LABELS[_s.lower()] = _choice


# Columns that look like a label: a file that has one but yields no label is refused.
LABEL_LIKE = (
    "label",
    "labels",
    "winner",
    "choice",
    "preference",
    "preferred",
    "better",
    "chosen_id",
    "label_a",
    "label_b",
    "rank_a",
    "rank_b",
    "overall_preference",
    "annotator1",
)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_label(value: Any, label_map: Mapping[str, Choice] | None = None) -> Choice | None:
    """Map a label value to a Choice; None for a missing label.

    Words (a, B, model_a, tie (bothbad), ...) are read as they are. A bare number is
    refused unless ``label_map`` says what it means: 0/1 means A in one dataset and B in
    the next, and guessing silently inverts every label.
    """
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from a CSV/Parquet gap
        return None
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int | float):
        value = str(int(value)) if float(value).is_integer() else str(value)
    text = str(value).strip()
    if text == "":
        return None
    if label_map is not None:
        key = str(int(float(text))) if _is_number(text) and float(text).is_integer() else text
        if key in label_map or key.lower() in label_map:
            return label_map.get(key) or label_map[key.lower()]
    choice = _LABELS.get(text.lower())
    if choice is not None:
        return choice
    if _is_number(text):
        raise ValueError(
            f"ambiguous numeric label {text!r}: say what it means with --label-map, e.g. "
            "--label-map 1=a,0=b (or 0=a,1=b,2=tie), or --label-decoder signed, "
            "or name the dataset with --format (see prefloop ingest --help)"
        )
    raise ValueError(
        f"unknown label value {text!r}; use a, b or tie (or A/B, model_a, tie (bothbad)), "
        "or say what it means with --label-map"
    )


def _number(row: Mapping[str, Any], name: str, where: tuple[str, int]) -> float | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowProblem(where[0], where[1], name, f"not a number: {value!r}") from None
    return None if number != number else number


def decode_label(
    row: Mapping[str, Any], where: tuple[str, int], opts: ShapeOptions
) -> tuple[Choice | None, float | None]:
    """(label, strength) of a generic row, by ``--label-map`` or ``--label-decoder``."""
    decoder = opts.label_decoder
    if decoder in ("signed", "signed-b"):
        value = _number(row, "label", where)
        if value is None:
            return None, None
        better_a = value > 0 if decoder == "signed" else value < 0
        choice = Choice.TIE if value == 0 else Choice.A if better_a else Choice.B
        return choice, abs(value) if value else None
    if decoder == "onehot":
        flags = {c: _number(row, f"label_{c.value}", where) for c in (Choice.A, Choice.B, Choice.TIE)}
        hot = [c for c, v in flags.items() if v]
        if len(hot) > 1:
            raise RowProblem(where[0], where[1], "label_a", "more than one of label_a/label_b/label_tie is set")
        return (hot[0] if hot else None), None
    if decoder == "rank":
        ra, rb = _number(row, "rank_a", where), _number(row, "rank_b", where)
        if ra is None or rb is None:
            return None, None
        return (Choice.TIE if ra == rb else Choice.A if ra < rb else Choice.B), None
    try:
        return parse_label(row.get("label"), opts.label_map), None
    except ValueError as exc:
        raise RowProblem(where[0], where[1], "label", str(exc)) from None


def apply_mapping(row: Mapping[str, Any], where: tuple[str, int], opts: ShapeOptions) -> Mapping[str, Any]:
    """The row with ``--map`` applied: each canonical name gets its column, nested path or JSON column."""
    if not opts.mapping:
        return row
    renamed = dict(row)
    for canonical, column in opts.mapping.items():
        value = get_path(row, column)
        if value is MISSING:
            raise RowProblem(where[0], where[1], column, f"mapped column for {canonical!r} is missing")
        renamed[canonical] = value
    return renamed


def _text(
    row: Mapping[str, Any],
    name: str,
    where: tuple[str, int],
    opts: ShapeOptions,
    allow_empty: bool = False,
    degenerate: bool = False,
) -> str:
    return check_text(row.get(name), name, where, opts, allow_empty=allow_empty, degenerate=degenerate)


def _messages(value: Any, name: str, where: tuple[str, int]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(m, dict) and "content" in m for m in value):
        raise RowProblem(where[0], where[1], name, "expected a list of {role, content} messages")
    return value


def _split_dialogues(chosen: str, rejected: str, where: tuple[str, int]) -> tuple[str, str, str]:
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind(ASSISTANT)
    if cut < 0:
        if chosen.strip() == rejected.strip():
            raise DegenerateRow(where[0], where[1], "rejected", "identical to the other response; a pair needs two")
        raise RowProblem(
            where[0],
            where[1],
            "chosen",
            "no shared 'Assistant:' turn with 'rejected'; give an explicit 'prompt' column",
        )
    end = cut + len(ASSISTANT)
    return chosen[:end], chosen[end:].strip(), rejected[end:].strip()


def extras_of(row: Mapping[str, Any], where: tuple[str, int], opts: ShapeOptions) -> dict[str, Any]:
    """Strength, dimension, annotator, rationale and model names of a generic row."""
    strength = _number(row, "strength", where)
    dimension = row.get("dimension") or opts.dimension
    annotator = row.get("annotator") or opts.annotator
    return {
        "strength": strength,
        "dimension": (str(dimension).strip() or None) if dimension else None,
        "annotator": (str(annotator).strip() or None) if annotator else None,
        "rationale": str(row["rationale"]) if row.get("rationale") else None,
        "model_a": str(row["model_a"]) if row.get("model_a") else None,
        "model_b": str(row["model_b"]) if row.get("model_b") else None,
        "source_line": where[1],
    }


def row_to_pairs(row: Mapping[str, Any], source: str, line: int, opts: ShapeOptions) -> list[PairRecord]:
    """Normalise one generic row into pairs; raises ``RowProblem`` naming the line and field.

    Generic rows are the user's own data: an empty text or identical responses there is
    an error to fix, not a degenerate row to skip (that leniency is for named datasets).
    """
    where = (source, line)
    row = apply_mapping(row, where, opts)
    extras = extras_of(row, where, opts)
    if "response_a" in row or "response_b" in row:
        prompt = _text(row, "prompt", where, opts)
        a, b = _text(row, "response_a", where, opts), _text(row, "response_b", where, opts)
        label, strength = decode_label(row, where, opts)
        if strength is not None and extras["strength"] is None:
            extras["strength"] = strength
        return [make_pair(prompt, a, b, label, where, degenerate=False, **extras)]
    if "chosen" in row or "rejected" in row:
        return [chosen_rejected(row, where, opts, extras)]
    if "responses" in row:
        return _candidates(row, where, opts, extras)
    raise RowProblem(
        source,
        line,
        None,
        "unrecognised shape; expected prompt/response_a/response_b, chosen/rejected or "
        f"prompt/responses columns (found: {', '.join(sorted(row)) or 'none'}); see --map, "
        "or name a known dataset with --format",
    )


def chosen_rejected(
    row: Mapping[str, Any],
    where: tuple[str, int],
    opts: ShapeOptions,
    extras: dict[str, Any],
    label: Choice = Choice.A,
    degenerate: bool = False,
) -> PairRecord:
    """A TRL chosen/rejected row: texts or message lists, explicit or implicit (shared-prefix) prompt."""
    for name in ("chosen", "rejected"):
        if row.get(name) is None:
            raise RowProblem(where[0], where[1], name, "missing")
    chosen, rejected = row["chosen"], row["rejected"]
    prompt_value = row.get("prompt")
    if isinstance(chosen, list) or isinstance(rejected, list):
        chosen = _messages(chosen, "chosen", where)
        rejected = _messages(rejected, "rejected", where)
        if isinstance(prompt_value, list):
            prompt_msgs = _messages(prompt_value, "prompt", where)
        else:
            shared = list(itertools.takewhile(lambda m: m[0] == m[1], zip(chosen, rejected, strict=False)))
            prompt_msgs = [m for m, _ in shared]
            chosen, rejected = chosen[len(prompt_msgs) :], rejected[len(prompt_msgs) :]
        if not prompt_msgs and isinstance(prompt_value, str):
            prompt_msgs = [{"role": "user", "content": prompt_value}]
        prompt = check_text(render_messages(prompt_msgs), "prompt", where, opts, degenerate=degenerate)
        a = check_text(" ".join(str(m["content"]) for m in chosen), "chosen", where, opts, degenerate=degenerate)
        b = check_text(" ".join(str(m["content"]) for m in rejected), "rejected", where, opts, degenerate=degenerate)
        meta = conversation_metadata(prompt_msgs, chosen, a, rejected, b)
        return make_pair(prompt, a, b, label, where, field_b="rejected", degenerate=degenerate, metadata=meta, **extras)
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise RowProblem(where[0], where[1], "chosen", "expected text or a list of messages")
    if prompt_value is not None:
        prompt = _text(row, "prompt", where, opts, degenerate=degenerate)
        a = _text(row, "chosen", where, opts, degenerate=degenerate)
        b = _text(row, "rejected", where, opts, degenerate=degenerate)
    else:
        _text(row, "chosen", where, opts, degenerate=degenerate)
        _text(row, "rejected", where, opts, degenerate=degenerate)
        prompt, a, b = _split_dialogues(chosen, rejected, where)
    return make_pair(prompt, a, b, label, where, field_b="rejected", degenerate=degenerate, **extras)


def _candidates(
    row: Mapping[str, Any], where: tuple[str, int], opts: ShapeOptions, extras: dict[str, Any]
) -> list[PairRecord]:
    prompt = _text(row, "prompt", where, opts)
    responses = row["responses"]
    if not isinstance(responses, list) or len(responses) < 2:
        raise RowProblem(where[0], where[1], "responses", "expected a list of at least two responses")
    texts = [check_text(r, f"responses[{i}]", where, opts) for i, r in enumerate(responses)]
    scores = row.get("scores")
    if scores is not None and (not isinstance(scores, list) or len(scores) != len(texts)):
        raise RowProblem(where[0], where[1], "scores", "expected one number per response")
    first: dict[str, int] = {}
    for i, t in enumerate(texts):
        first.setdefault(t.strip(), i)  # the first response with each text
    unique = list(first.values())
    pairs: list[PairRecord] = []
    for i, j in itertools.combinations(unique, 2):
        label = None
        if scores is not None:
            si, sj = float(scores[i]), float(scores[j])
            label = Choice.A if si > sj else Choice.B if sj > si else Choice.TIE
        pairs.append(
            PairRecord(
                prompt=prompt,
                response_a=texts[i],
                response_b=texts[j],
                label=label,
                **{**extras, "model_a": None, "model_b": None},
            )
        )
        if opts.max_pairs_per_prompt and len(pairs) >= opts.max_pairs_per_prompt:
            break
    return pairs
