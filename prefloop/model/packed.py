"""Many responses to one prompt scored in one sequence: the shared-prompt layout, packed.

``shared_prompt`` puts a pair's two responses after one copy of their prompt. Scoring lone
responses (the audit scores each response and a dozen edits of it, all after the same prompt)
generalises it: every response of one prompt that sees the same prompt *window* joins one
sequence, so the prompt runs through the network once per window instead of once per response.

Each response gets exactly the reward it gets alone, ``(prompt, response)`` as one sequence:
its prompt window is the one the pair rule gives it alone (the last tokens of the prompt that
fit beside it), and the attention mask keeps it from seeing the other responses. Responses whose
windows differ (a long response cuts more of a long prompt) cannot share prompt tokens, since a
token's position, and so its state, depends on where the window starts; they go in separate
sequences. A sequence holds at most ``max_tokens`` tokens (attention grows with the square of
the length), and batches are length-sorted with at most ``batch_tokens`` tokens each (padding
included), so the padding stays small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from prefloop.model.render import render
from prefloop.model.shared_prompt import PairLayout, collate_layouts, tokenize_unique

__all__ = ["PackedResponses"]


class PackedResponses:
    """``(prompt, response)`` items tokenised once each and packed into shared-prompt sequences.

    ``slots[j]`` lists the items whose rewards sequence j gives, in its ``pool`` order.
    """

    def __init__(
        self,
        items: list[tuple[str, str]],
        tokenizer: Any,
        template: str,
        max_length: int,
        layout: PairLayout,
        max_tokens: int,
    ) -> None:
        rendered = [render(p, r, template, tokenizer) for p, r in items]
        contexts = tokenize_unique(tokenizer, [x.context for x in rendered])
        responses = tokenize_unique(tokenizer, [x.response for x in rendered])
        cap = max(1, max_length - layout.n_special)
        # per response: its own tokens; per sequence: the shared ones (see PairLayout.build)
        own_extra = len(layout.suffix) + (0 if layout.decoder else len(layout.prefix))
        shared_extra = len(layout.mid) + (len(layout.prefix) if layout.decoder else 0)
        groups: dict[tuple[str, int], list[int]] = {}
        for i, x in enumerate(rendered):
            n_prompt, n_resp = len(contexts[x.context]), min(len(responses[x.response]), cap)
            window = min(n_prompt, max(0, cap - n_resp))  # what PairLayout.truncate leaves it alone
            groups.setdefault((x.context, window), []).append(i)
        self.built: list[dict[str, list[int]]] = []
        self.slots: list[list[int]] = []
        for (context, window), members in groups.items():
            prompt = contexts[context]
            chunk: list[int] = []
            size = window + shared_extra
            for i in members:
                cost = min(len(responses[rendered[i].response]), cap) + own_extra
                if chunk and size + cost > max_tokens:
                    self._add(layout, prompt, chunk, rendered, responses, max_length)
                    chunk, size = [], window + shared_extra
                chunk.append(i)
                size += cost
            self._add(layout, prompt, chunk, rendered, responses, max_length)
        self.lengths = np.array([len(b["input_ids"]) for b in self.built], dtype=np.int64)
        self.pad_id = int(tokenizer.pad_token_id)
        self.layout = layout
        self.n_scored = len(items)

    def _add(
        self,
        layout: PairLayout,
        prompt: list[int],
        chunk: list[int],
        rendered: list[Any],
        responses: dict[str, list[int]],
        max_length: int,
    ) -> None:
        # every response of a chunk has the same window, so the pair rule (the prompt fits the
        # longest response) gives each of them its own window
        self.built.append(layout.build(prompt, [responses[rendered[i].response] for i in chunk], max_length))
        self.slots.append(chunk)

    def __len__(self) -> int:
        return len(self.built)

    def score_batches(self, batch_tokens: int) -> list[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        """Every sequence once, longest first, at most ``batch_tokens`` tokens (padding included) a batch
        (one sequence at least): (scored items in the order of the inputs' ``pool_index``, inputs)."""
        order = np.argsort(-self.lengths, kind="stable")
        out: list[tuple[np.ndarray, dict[str, torch.Tensor]]] = []
        start = 0
        while start < len(order):
            width = int(self.lengths[order[start]])  # the longest of the batch: it sets the padding
            count = max(1, batch_tokens // max(1, width))
            rows = order[start : start + count]
            start += len(rows)
            most = max(len(self.slots[r]) for r in rows)
            # collate_layouts orders pooled states response-major: every sequence's first, then seconds…
            slots = [self.slots[r][k] for k in range(most) for r in rows if k < len(self.slots[r])]
            out.append(
                (
                    np.array(slots, dtype=np.int64),
                    collate_layouts([self.built[r] for r in rows], self.pad_id, self.layout),
                )
            )
        return out
