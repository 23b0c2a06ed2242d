"""OpenAI summarize-from-feedback, ``comparisons`` (openai/summarize_from_feedback).

Each row: ``info`` (``id``, ``post``, ``title``, ``subreddit``; CNN/DM rows have
``article`` instead of ``post``), ``summaries`` (two ``{text, policy, note}``),
``choice`` (0 or 1: the index of the summary the labeler preferred), ``worker`` (the
labeler: our annotator), ``batch``, ``split``, and ``extra.confidence`` (the labeler's
1-9 confidence, kept as the label's strength). The prompt is the title and the post.
"""

from __future__ import annotations

from prefloop.data.fields import MISSING, ShapeOptions, Where, check_text, get_path, make_pair
from prefloop.data.formats.base import Adapter, Row, label_of, number, required, with_options
from prefloop.types import Choice, PairRecord

__all__ = ["ADAPTERS"]

CHOICES = {0: Choice.A, 1: Choice.B}


def _detect(row: Row) -> bool:
    return "summaries" in row and "choice" in row and "info" in row


def _convert(row: Row, where: Where, opts: ShapeOptions) -> list[PairRecord]:
    post = get_path(row, "info.post")
    if post is MISSING or post is None:
        post = required(row, "info.article", where)
    title = get_path(row, "info.title")
    body = check_text(post, "info.post", where, opts, degenerate=True)
    prompt = f"TITLE: {title}\n\nPOST: {body}" if title not in (MISSING, None, "") else body
    a = check_text(required(row, "summaries.0.text", where), "summaries.0.text", where, opts, degenerate=True)
    b = check_text(required(row, "summaries.1.text", where), "summaries.1.text", where, opts, degenerate=True)
    label = label_of(required(row, "choice", where), CHOICES, "choice", where)
    confidence = get_path(row, "extra.confidence")
    strength = number(None if confidence is MISSING else confidence, "extra.confidence", where)
    worker = row.get("worker")
    post_id = get_path(row, "info.id")
    return [
        with_options(
            make_pair(
                prompt,
                a,
                b,
                label,
                where,
                field_b="summaries.1.text",
                strength=strength,
                annotator=str(worker) if worker else None,
                model_a=get_path(row, "summaries.0.policy") or None,
                model_b=get_path(row, "summaries.1.policy") or None,
                label_key=None if post_id is MISSING else f"{post_id}:{row.get('batch')}",
            ),
            opts,
        )
    ]


ADAPTERS = [
    Adapter(
        "summarize-feedback",
        "OpenAI summarize-from-feedback comparisons: choice, worker, confidence",
        _detect,
        _convert,
    )
]
