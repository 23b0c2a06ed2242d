"""Small helpers every row reader shares: nested field paths, text checks, messages, one pair.

Kept apart from ``shapes`` (generic rows) and ``formats`` (named datasets) so both read a
field, check a text and build a pair the same way, and name the same line and field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prefloop.data.readers import FORMATS
from prefloop.errors import DegenerateRow, RowProblem
from prefloop.types import Choice, PairRecord, content_hash

__all__ = [
    "LABEL_KEY",
    "LABEL_RAW",
    "MISSING",
    "UNREAD",
    "ShapeOptions",
    "Where",
    "check_text",
    "conversation_metadata",
    "get_path",
    "make_pair",
    "reading_shape",
    "render_messages",
    "split_conversations",
]

Where = tuple[str, int]
MISSING: Any = object()


@dataclass(frozen=True)
class ShapeOptions:
    """How to read rows: column renames, label semantics, text limits, candidate-pair expansion.

    ``mapping`` maps a canonical name to a column, a nested path (``info.post``,
    ``summaries.0.text``) or ``json:COLUMN`` for a JSON-encoded column. ``label_map``
    states what each raw label value means (``{"1": Choice.A, "0": Choice.B}``);
    ``label_decoder`` reads numbers: ``signed`` (>0 means A better), ``signed-b`` (>0 means B
    better), ``onehot`` (columns label_a / label_b / label_tie), ``rank`` (rank_a / rank_b,
    1 = best). ``dimension`` and ``annotator`` apply to labels that do not name their own.
    ``fmt`` names a dataset adapter; ``strict`` makes degenerate rows errors.
    """

    mapping: Mapping[str, str] | None = None
    max_chars: int = 200_000
    max_pairs_per_prompt: int | None = None
    label_map: Mapping[str, Choice] | None = None
    label_decoder: str | None = None
    dimension: str | None = None
    annotator: str | None = None
    fmt: str | None = None
    strict: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def reading_shape(fmt: str | None, file_type: str | None, **fields: Any) -> tuple[str | None, ShapeOptions]:
    """(file type, ``ShapeOptions``) as ``--format`` / ``--file-type`` give them: a file type named
    as the format (the older meaning of ``--format jsonl``) is the file type; ``fields`` are the
    other ``ShapeOptions`` fields, already parsed."""
    if fmt in FORMATS:
        file_type, fmt = file_type or fmt, None
    return file_type, ShapeOptions(fmt=fmt, **fields)


def _decode_json(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def get_path(row: Mapping[str, Any], path: str) -> Any:
    """The value at ``path``: a column, a dotted path into dicts and lists, or ``json:PATH``.

    A column whose name itself contains dots (Argilla's ``preference.responses``) wins over
    the nested reading. JSON-encoded strings met on the way are decoded. Returns ``MISSING``
    when the path does not exist.
    """
    if path.startswith("json:"):
        value = get_path(row, path[5:])
        return value if value is MISSING else _decode_json(value)
    if path in row:
        return row[path]
    current: Any = row
    for step in path.split("."):
        current = _decode_json(current)
        if isinstance(current, Mapping) and step in current:
            current = current[step]
        elif isinstance(current, list) and step.lstrip("-").isdigit() and -len(current) <= int(step) < len(current):
            current = current[int(step)]
        else:
            return MISSING
    return current


def check_text(
    value: Any, name: str, where: Where, opts: ShapeOptions, *, allow_empty: bool = False, degenerate: bool = False
) -> str:
    """A text field, checked: present, text, not empty (unless allowed), within the size limit, no NUL.

    With ``degenerate`` an empty text raises ``DegenerateRow`` (skipped and counted in
    well-known datasets) instead of a plain row problem.
    """
    if value is None or value is MISSING:
        raise RowProblem(where[0], where[1], name, "missing")
    if isinstance(value, bool | int | float):  # PandaLM has a bare `true` as a response
        value = str(value)
    if not isinstance(value, str):
        raise RowProblem(where[0], where[1], name, f"expected text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise (DegenerateRow if degenerate else RowProblem)(where[0], where[1], name, "empty text")
    if len(value) > opts.max_chars:
        raise RowProblem(
            where[0],
            where[1],
            name,
            f"text of {len(value):,} characters exceeds the limit of {opts.max_chars:,} (raise it with --max-chars)",
        )
    if "\x00" in value:
        raise RowProblem(where[0], where[1], name, "contains a NUL character")
    return value


def render_messages(messages: list[dict[str, Any]]) -> str:
    """Messages as one text, each turn introduced by its role (the HH dialogue convention)."""
    return "".join(f"\n\n{str(m.get('role', 'user')).capitalize()}: {m.get('content') or ''}" for m in messages)


def split_conversations(
    conv_a: list[dict[str, Any]], conv_b: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(shared prompt messages, the rest of A, the rest of B): the prompt is the common prefix."""
    shared = 0
    for ma, mb in zip(conv_a, conv_b, strict=False):
        if ma.get("role") != mb.get("role") or ma.get("content") != mb.get("content"):
            break
        shared += 1
    # a response starts with the first differing turn; never swallow the whole of either side
    shared = min(shared, len(conv_a) - 1, len(conv_b) - 1)
    return conv_a[:shared], conv_a[shared:], conv_b[shared:]


LABEL_KEY = "_label_key"
LABEL_RAW = "_label_raw"
# A record of a row whose annotation this reader could not read: the controls / columns it skipped.
UNREAD = "_unread"


def make_pair(
    prompt: str,
    a: str,
    b: str,
    label: Choice | None,
    where: Where,
    *,
    field_b: str = "response_b",
    degenerate: bool = True,
    label_key: str | None = None,
    label_raw: dict[str, Any] | None = None,
    **extras: Any,
) -> PairRecord:
    """One ``PairRecord``; identical responses raise ``DegenerateRow`` (or a plain problem).

    ``label_key`` is the source's own id for this judgement (a row id, an annotation id):
    two rows judging the same texts are then two labels, not one. ``label_raw`` is kept
    with the label (Label Studio's ``lead_time``). Both travel in reserved metadata keys
    that the store takes off before it writes the pair's metadata.
    """
    if a.strip() == b.strip():
        raise (DegenerateRow if degenerate else RowProblem)(
            where[0], where[1], field_b, "identical to the other response; a pair needs two"
        )
    extras.setdefault("source_line", where[1])
    if label_key is not None or label_raw:
        meta = dict(extras.get("metadata") or {})
        if label_key is not None:
            meta[LABEL_KEY] = label_key
        if label_raw:
            meta[LABEL_RAW] = label_raw
        extras["metadata"] = meta
    return PairRecord(prompt=prompt, response_a=a, response_b=b, label=label, **extras)


def conversation_metadata(
    prompt_msgs: list[dict[str, Any]], msgs_a: list[dict[str, Any]], a: str, msgs_b: list[dict[str, Any]], b: str
) -> dict[str, Any]:
    """Pair metadata that lets export give the conversation back as message lists (TRL conversational)."""
    return {"prompt_messages": prompt_msgs, "response_messages": {content_hash(a): msgs_a, content_hash(b): msgs_b}}
