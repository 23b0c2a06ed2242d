"""Prompt + response → token ids, keeping the response and cutting the prompt from the LEFT.

Two templates:

- ``plain``: the prompt and the response are encoded as a text pair (an encoder sees
  ``[CLS] prompt [SEP] response [SEP]``; a decoder sees them concatenated).
- ``chat``: the tokenizer's chat template. A prompt written as ``Human: … Assistant: …``
  turns (HH-RLHF style) becomes a list of messages; anything else is one user message.

A rendered input is identified by ``text_key`` (a hash of template + context + response):
identical prompt+response inputs are tokenised, embedded and scored once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from prefloop.errors import ModelError

__all__ = ["Rendered", "encode", "render", "split_turns", "text_key"]

_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant|User|System):", re.IGNORECASE)
_ROLE = {"human": "user", "user": "user", "assistant": "assistant", "system": "system"}


@dataclass(frozen=True)
class Rendered:
    """The two parts of one model input: ``context`` may be truncated, ``response`` is kept."""

    context: str
    response: str
    key: str


def text_key(template: str, context: str, response: str) -> str:
    h = hashlib.sha256()
    for part in (template, context, response):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def split_turns(prompt: str) -> list[dict[str, str]]:
    """HH-style ``\\n\\nHuman: …\\n\\nAssistant: …`` → chat messages (a trailing empty turn dropped)."""
    marks = list(_TURN.finditer(prompt))
    if not marks:
        return [{"role": "user", "content": prompt.strip()}]
    messages = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(prompt)
        content = prompt[m.end() : end].strip()
        role = _ROLE[m.group(1).lower()]
        if content or i + 1 < len(marks):
            messages.append({"role": role, "content": content})
    return messages


def render(prompt: str, response: str, template: str, tokenizer: Any = None) -> Rendered:
    """Split one input into (context, response) strings under ``template``."""
    if template == "plain":
        return Rendered(prompt, response, text_key(template, prompt, response))
    if template != "chat":
        raise ModelError(f"unknown template {template!r}; use 'plain' or 'chat'")
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ModelError("template='chat' needs a tokenizer with a chat template; use template='plain'")
    messages = split_turns(prompt)
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages = messages[:-1]
    context = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": response.strip()}], tokenize=False
    )
    tail = full[len(context) :] if full.startswith(context) else response
    return Rendered(context, tail, text_key(template, context, tail))


def encode(tokenizer: Any, items: list[Rendered], max_length: int, template: str) -> list[dict[str, list[int]]]:
    """Token ids (+ token_type_ids where the tokenizer makes them) for each rendered input.

    The context is truncated from the left so that the response survives; a response that
    alone does not fit keeps its first ``max_length`` tokens (with special tokens) instead.
    """
    if not items:
        return []
    if template == "chat":
        ctx = tokenizer([r.context for r in items], add_special_tokens=False)["input_ids"]
        resp = tokenizer([r.response for r in items], add_special_tokens=False)["input_ids"]
        chat: list[dict[str, list[int]]] = []
        for c, r in zip(ctx, resp, strict=True):
            r = r[:max_length]
            budget = max_length - len(r)
            chat.append({"input_ids": (c[-budget:] if budget > 0 else []) + r})
        return chat
    n_special = tokenizer.num_special_tokens_to_add(pair=True)
    resp_len = [len(x) for x in tokenizer([r.response for r in items], add_special_tokens=False)["input_ids"]]
    old_side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    try:
        fits = [i for i, n in enumerate(resp_len) if n + n_special < max_length]
        out: list[dict[str, list[int]]] = [{} for _ in items]
        if fits:
            enc = tokenizer(
                [items[i].context for i in fits],
                [items[i].response for i in fits],
                truncation="only_first",
                max_length=max_length,
            )
            for j, i in enumerate(fits):
                out[i] = {k: list(v[j]) for k, v in enc.items() if k != "attention_mask"}
        long = [i for i, n in enumerate(resp_len) if n + n_special >= max_length]
        if long:
            tokenizer.truncation_side = "right"
            enc = tokenizer([items[i].response for i in long], truncation=True, max_length=max_length)
            for j, i in enumerate(long):
                out[i] = {k: list(v[j]) for k, v in enc.items() if k != "attention_mask"}
    finally:
        tokenizer.truncation_side = old_side
    return out
