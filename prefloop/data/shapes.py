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
from dataclasses import dataclass
from typing import Any

from prefloop.errors import RowProblem
from prefloop.types import Choice, PairRecord

__all__ = ["ShapeOptions", "parse_label", "row_to_pairs"]

ASSISTANT = "\n\nAssistant:"

_LABELS: dict[str, Choice] = {}
for _choice, _spellings in {
    Choice.A: ("a", "A", "0", "model_a", "response_a", "left", "first", "chosen_a", "a>b"),
    Choice.B: ("b", "B", "1", "model_b", "response_b", "right", "second", "chosen_b", "b>a"),
    Choice.TIE: ("tie", "Tie", "TIE", "draw", "equal", "both", "tie (bothbad)", "tie (both bad)",
                 "tie(bothbad)", "both_bad", "both_good", "2", "a=b"),
}.items():
    for _s in _spellings:
        _LABELS[_s.lower()] = _choice


@dataclass(frozen=True)
class ShapeOptions:
    """How to read rows: column renames, text limits, candidate-pair expansion."""

    mapping: Mapping[str, str] | None = None  # canonical name -> column name in the file
    max_chars: int = 200_000
    max_pairs_per_prompt: int | None = None


def parse_label(value: Any) -> Choice | None:
    """Map the common spellings of a preference label to a Choice; None for a missing label."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"unknown label value {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value != value:  # NaN from a CSV/Parquet gap
            return None
        value = str(int(value)) if float(value).is_integer() else str(value)
    text = str(value).strip()
    if text == "":
        return None
    choice = _LABELS.get(text.lower())
    if choice is None:
        raise ValueError(f"unknown label value {text!r}; use a, b or tie (or A/B, 0/1, model_a, tie (bothbad))")
    return choice


def _text(row: Mapping[str, Any], name: str, where: tuple[str, int], opts: ShapeOptions,
          allow_empty: bool = False) -> str:
    value = row.get(name)
    if value is None:
        raise RowProblem(where[0], where[1], name, "missing")
    if not isinstance(value, str):
        raise RowProblem(where[0], where[1], name, f"expected text, got {type(value).__name__}")
    return _check_text(value, name, where, opts, allow_empty)


def _check_text(value: str, name: str, where: tuple[str, int], opts: ShapeOptions, allow_empty: bool) -> str:
    if not allow_empty and not value.strip():
        raise RowProblem(where[0], where[1], name, "empty text")
    if len(value) > opts.max_chars:
        raise RowProblem(where[0], where[1], name,
                         f"text of {len(value):,} characters exceeds the limit of {opts.max_chars:,} "
                         "(raise it with --max-chars)")
    if "\x00" in value:
        raise RowProblem(where[0], where[1], name, "contains a NUL character")
    return value


def _render_messages(messages: list[dict[str, Any]]) -> str:
    return "".join(f"\n\n{str(m.get('role', 'user')).capitalize()}: {m.get('content', '')}" for m in messages)


def _messages(value: Any, name: str, where: tuple[str, int]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(m, dict) and "content" in m for m in value):
        raise RowProblem(where[0], where[1], name, "expected a list of {role, content} messages")
    return value


def _split_dialogues(chosen: str, rejected: str, where: tuple[str, int]) -> tuple[str, str, str]:
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind(ASSISTANT)
    if cut < 0:
        raise RowProblem(where[0], where[1], "chosen",
                         "no shared 'Assistant:' turn with 'rejected'; give an explicit 'prompt' column")
    end = cut + len(ASSISTANT)
    return chosen[:end], chosen[end:].strip(), rejected[end:].strip()


def _extras(row: Mapping[str, Any], where: tuple[str, int]) -> dict[str, Any]:
    strength = row.get("strength")
    if strength is not None and strength != "":
        try:
            strength = float(strength)
        except (TypeError, ValueError):
            raise RowProblem(where[0], where[1], "strength", f"not a number: {strength!r}") from None
        if strength != strength:
            strength = None
    else:
        strength = None
    return {
        "strength": strength,
        "dimension": (str(row["dimension"]).strip() or None) if row.get("dimension") else None,
        "annotator": (str(row["annotator"]).strip() or None) if row.get("annotator") else None,
        "rationale": str(row["rationale"]) if row.get("rationale") else None,
        "model_a": str(row["model_a"]) if row.get("model_a") else None,
        "model_b": str(row["model_b"]) if row.get("model_b") else None,
        "source_line": where[1],
    }


def _pair(prompt: str, a: str, b: str, label: Choice | None, where: tuple[str, int],
          extras: dict[str, Any], field_b: str = "response_b") -> PairRecord:
    if a.strip() == b.strip():
        raise RowProblem(where[0], where[1], field_b, "identical to the other response; a pair needs two")
    return PairRecord(prompt=prompt, response_a=a, response_b=b, label=label, **extras)


def row_to_pairs(row: Mapping[str, Any], source: str, line: int, opts: ShapeOptions) -> list[PairRecord]:
    """Normalise one row into pairs; raises ``RowProblem`` naming the line and field."""
    where = (source, line)
    if opts.mapping:
        renamed = dict(row)
        for canonical, column in opts.mapping.items():
            if column not in row:
                raise RowProblem(source, line, column, f"mapped column for {canonical!r} is missing")
            renamed[canonical] = row[column]
        row = renamed
    extras = _extras(row, where)
    if "response_a" in row or "response_b" in row:
        prompt = _text(row, "prompt", where, opts)
        a, b = _text(row, "response_a", where, opts), _text(row, "response_b", where, opts)
        try:
            label = parse_label(row.get("label"))
        except ValueError as exc:
            raise RowProblem(source, line, "label", str(exc)) from None
        return [_pair(prompt, a, b, label, where, extras)]
    if "chosen" in row or "rejected" in row:
        return [_chosen_rejected(row, where, opts, extras)]
    if "responses" in row:
        return _candidates(row, where, opts, extras)
    raise RowProblem(source, line, None,
                     "unrecognised shape; expected prompt/response_a/response_b, chosen/rejected or "
                     f"prompt/responses columns (found: {', '.join(sorted(row)) or 'none'}); see --map")


def _chosen_rejected(row: Mapping[str, Any], where: tuple[str, int], opts: ShapeOptions,
                     extras: dict[str, Any]) -> PairRecord:
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
            chosen, rejected = chosen[len(prompt_msgs):], rejected[len(prompt_msgs):]
        prompt = _check_text(_render_messages(prompt_msgs), "prompt", where, opts, allow_empty=False)
        a = _check_text(" ".join(str(m["content"]) for m in chosen), "chosen", where, opts, False)
        b = _check_text(" ".join(str(m["content"]) for m in rejected), "rejected", where, opts, False)
        record = _pair(prompt, a, b, Choice.A, where, extras, field_b="rejected")
        return PairRecord(**{**record.__dict__, "metadata": {"prompt_messages": prompt_msgs}})
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise RowProblem(where[0], where[1], "chosen", "expected text or a list of messages")
    if prompt_value is not None:
        prompt = _text(row, "prompt", where, opts)
        a = _text(row, "chosen", where, opts)
        b = _text(row, "rejected", where, opts)
    else:
        _check_text(chosen, "chosen", where, opts, allow_empty=False)
        _check_text(rejected, "rejected", where, opts, allow_empty=False)
        prompt, a, b = _split_dialogues(chosen, rejected, where)
    return _pair(prompt, a, b, Choice.A, where, extras, field_b="rejected")


def _candidates(row: Mapping[str, Any], where: tuple[str, int], opts: ShapeOptions,
                extras: dict[str, Any]) -> list[PairRecord]:
    prompt = _text(row, "prompt", where, opts)
    responses = row["responses"]
    if not isinstance(responses, list) or len(responses) < 2:
        raise RowProblem(where[0], where[1], "responses", "expected a list of at least two responses")
    texts = [_check_text(str(r), f"responses[{i}]", where, opts, False) for i, r in enumerate(responses)]
    scores = row.get("scores")
    if scores is not None and (not isinstance(scores, list) or len(scores) != len(texts)):
        raise RowProblem(where[0], where[1], "scores", "expected one number per response")
    seen: set[str] = set()
    unique = [i for i, t in enumerate(texts) if not (t.strip() in seen or seen.add(t.strip()))]
    pairs: list[PairRecord] = []
    for i, j in itertools.combinations(unique, 2):
        label = None
        if scores is not None:
            si, sj = float(scores[i]), float(scores[j])
            label = Choice.A if si > sj else Choice.B if sj > si else Choice.TIE
        pairs.append(PairRecord(prompt=prompt, response_a=texts[i], response_b=texts[j], label=label,
                                **{**extras, "model_a": None, "model_b": None}))
        if opts.max_pairs_per_prompt and len(pairs) >= opts.max_pairs_per_prompt:
            break
    return pairs
