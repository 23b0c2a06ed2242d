"""What an annotation tool's project calls its texts and its verdicts, found from the export itself.

Label Studio and Argilla projects name their fields whatever their label config / settings say
(``prompt`` + ``answer1`` / ``answer2`` in Label Studio's RLHF template, ``instruction`` +
``response_1`` / ``response_2`` elsewhere). Shared by both tools' readers:

* ``find_texts``: which keys hold the prompt and the two responses, from hints (the result's
  ``to_name``, label options that name a field) and the keys themselves (two names that differ
  only in a last 1/2, a/b or left/right); ambiguity is an error that names the ``--map`` to write;
* ``verdict_of``: what a choice's text means (A, B or tie), from the label map, the words
  ("left", "Answer 1", "Response B is better", "Both equal") or the response field it names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from prefloop.data.fields import Where
from prefloop.errors import RowProblem
from prefloop.types import Choice

__all__ = [
    "PROMPT_NAMES",
    "TextKeys",
    "find_prompt",
    "find_responses",
    "find_texts",
    "label_table",
    "side_token",
    "verdict_of",
]

PROMPT_NAMES = (
    "prompt",
    "question",
    "instruction",
    "query",
    "input",
    "context",
    "conversation",
    "dialogue",
    "dialog",
    "chat",
    "history",
    "message",
    "text",
)
_WORDS = {
    "a": Choice.A,
    "left": Choice.A,
    "first": Choice.A,
    "1": Choice.A,
    "one": Choice.A,
    "b": Choice.B,
    "right": Choice.B,
    "second": Choice.B,
    "2": Choice.B,
    "two": Choice.B,
}
_TIE_WORDS = ("tie", "equal", "equally", "same", "both", "neither", "draw", "tied", "none")
_SIDES = (("1", "2"), ("a", "b"), ("left", "right"), ("first", "second"), ("one", "two"))
_NOT_PROMPT = ("pair_key", "strategy", "model_version", "id")
_RESPONSE_WORDS = ("response", "answer", "completion", "output", "reply", "generation", "text", "left", "model")

TextKeys = tuple[str | None, str, str]  # (prompt key or None, response A key, response B key)


def _stem(name: str) -> tuple[str, str] | None:
    """(stem, side) for a name ending in a side token: ``answer1`` -> (answer, 1), ``response_b`` -> (response_, b)."""
    low = name.lower()
    for pair in _SIDES:
        for token in pair:
            if low.endswith(token) and len(low) > len(token):
                stem = low[: -len(token)]
                if token.isdigit() and stem[-1:].isdigit():
                    continue
                if token.isalpha() and len(token) == 1 and stem[-1:].isalpha():
                    continue  # "data" is not a "dat" + "a"
                return stem, token
            if low == token and token in ("left", "right"):
                return "", token
    return None


def side_token(name: str) -> str | None:
    """The side a name points at (``1``, ``b``, ``left``...), or None."""
    found = _stem(name)
    return found[1] if found else None


def _sibling(name: str, keys: Sequence[str]) -> str | None:
    """The key that is ``name``'s other side: answer1 -> answer2, left -> right."""
    found = _stem(name)
    if found is None:
        return None
    stem, token = found
    for pair in _SIDES:
        if token in pair:
            other = pair[1 - pair.index(token)]
            for key in keys:
                if key != name and key.lower() == stem + other:
                    return key
    return None


def _pairs(keys: Sequence[str]) -> list[tuple[str, str]]:
    """Every (first side, second side) pair of keys, in the keys' order."""
    out = []
    for key in keys:
        found = _stem(key)
        if found is None or found[1] not in ("1", "a", "left", "first", "one"):
            continue
        other = _sibling(key, keys)
        if other is not None:
            out.append((key, other))
    return out


def find_responses(data: Mapping[str, Any], hints: Sequence[str], where: Where, field: str = "data") -> tuple[str, str]:
    """The keys of the two responses among the text keys of ``data``.

    ``hints`` name response keys in order (a result's ``to_name``, the fields a label option
    names): two of them are the responses; one is response A and its sibling response B.
    Otherwise two keys that differ only in their last side token (1/2, a/b, left/right) are.
    """
    texts = [str(k) for k, v in data.items() if isinstance(v, str) and not str(k).startswith("_")]
    if "response_a" in data and "response_b" in data:  # the canonical names (prefloop's own, or --map)
        return "response_a", "response_b"
    named = [h for h in dict.fromkeys(hints) if h in data]
    if len(named) >= 2:
        return named[0], named[1]
    if len(named) == 1 and (other := _sibling(named[0], texts)) is not None:
        return named[0], other
    pairs = _pairs(texts)
    preferred = [p for p in pairs if any(w in p[0].lower() for w in _RESPONSE_WORDS)]
    if len(preferred) == 1 or (len(pairs) == 1 and not preferred):
        return (preferred or pairs)[0]
    why = "several" if pairs else "no"
    path = _path(field)
    raise RowProblem(
        where[0],
        where[1],
        field,
        f"cannot tell which fields are the two responses ({why} candidate pairs among the text "
        f"fields: {', '.join(texts) or 'none'}); name them, e.g. --map response_a={path}"
        f"{texts[0] if texts else 'X'} --map response_b={path}Y --map prompt={path}Z",
    )


def _path(field: str) -> str:
    """How ``--map`` reaches a key of ``field``: nested under it (``data.answer1``) or a top-level column."""
    return f"{field}." if field in ("data", "fields") else ""


def find_prompt(data: Mapping[str, Any], a: str, b: str, where: Where, field: str = "data") -> str | None:
    """The prompt's key: a text key with a prompt-like name, or the only other text key (None: no prompt)."""
    rest = [
        str(k)
        for k, v in data.items()
        if isinstance(v, str)
        and k not in (a, b)
        and v not in (data[a], data[b])  # the column a --map copied to response_a / response_b
        and not str(k).startswith("_")
        and str(k).lower() not in _NOT_PROMPT
    ]
    for exact in (True, False):
        for name in PROMPT_NAMES:
            for key in rest:
                if key.lower() == name if exact else name in key.lower():
                    return key
    if len(rest) <= 1:
        return rest[0] if rest else None
    raise RowProblem(
        where[0],
        where[1],
        field,
        f"cannot tell which field is the prompt among {', '.join(rest)}; name it, e.g. "
        f"--map prompt={_path(field)}{rest[0]}",
    )


def find_texts(data: Mapping[str, Any], hints: Sequence[str], where: Where, field: str = "data") -> TextKeys:
    """(prompt key or None, response A key, response B key) of ``data``; see the two functions above."""
    a, b = find_responses(data, hints, where, field)
    return find_prompt(data, a, b, where, field), a, b


def label_table(label_map: Mapping[str, Choice] | None) -> dict[str, Choice]:
    """The user's ``--label-map``, its keys compared without case or surrounding space."""
    return {str(k).strip().lower(): v for k, v in (label_map or {}).items()}


def verdict_of(text: Any, keys: TextKeys, table: Mapping[str, Choice]) -> Choice | None:
    """What a choice's text means, or None when it is not a verdict this reader can tell.

    The label map first; then a text that names a response field ("answer1", "response_b");
    then tie words; then the side words it holds ("A", "Left", "Response 2 is better").
    A text pointing at both sides (or neither) is None: it needs ``--label-map``.
    """
    if text is None:
        return None
    raw = str(text).strip()
    low = raw.lower()
    if low in table:
        return table[low]
    _, a, b = keys
    if low == a.lower():
        return Choice.A
    if low == b.lower():
        return Choice.B
    words = re.findall(r"[a-z]+|\d+", low)
    if not words:
        return None
    if any(w in _TIE_WORDS for w in words):
        return Choice.TIE
    squashed = re.sub(r"[^a-z0-9]", "", low)
    for key, choice in ((a, Choice.A), (b, Choice.B)):
        if squashed == re.sub(r"[^a-z0-9]", "", key.lower()):
            return choice
    sides = {_WORDS[w] for w in words if w in _WORDS}
    if len(sides) == 1:
        return sides.pop()
    return None
