"""One pass over a pair's prompt: both responses attend to a single copy of it.

In a preference pair both responses follow the same prompt, and in HH-style data the prompt
is most of the tokens. Encoding ``prompt+a`` and ``prompt+b`` separately (what TRL's
``RewardTrainer`` does) runs the prompt through the network twice. Here a pair is ONE
sequence, and a 4D attention mask keeps the two responses apart::

    decoder:  prompt… | a… | b…                 (causal; b does not see a)
    encoder:  [CLS_a] [CLS_b] prompt… [SEP] | a… [SEP] | b… [SEP]

Every token carries the position it would have in its own ``prompt+response`` sequence, so
``b`` starts at the same position as ``a``. The mask rule: a prompt token attends to prompt
tokens; a response's own tokens (its ``[CLS]`` for an encoder) attend to the prompt and to
each other; causal models add position order.

- **Decoders:** exact. Prompt tokens never attend to the response anyway, so each reward
  equals the standard causal model's reward on ``prompt+response``.
- **Encoders:** a prefix-attention model. The prompt is encoded on its own, and the
  response and its ``[CLS]`` read it. Training and scoring both use this layout, so the
  reward function is well defined. A lone response is the same layout with one response.

**Truncation is per pair.** The prompt is cut from the left to fit the LONGER response, so
both responses are judged on the same context. A response that does not fit on its own keeps
its first tokens.

``check_support`` verifies at load time, on a tiny input, that an architecture honours 4D
masks and explicit positions, and that its classification head can be applied to chosen
token states. Anything else falls back to one sequence per response.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from prefloop.model.batching import Batch, shard_groups
from prefloop.model.render import Rendered, render

__all__ = ["PairLayout", "SharedPairs", "check_support", "shared_rewards", "tokenize_unique"]

Ids = list[int]


@dataclass(frozen=True)
class PairLayout:
    """Special tokens around ``prompt`` and ``response`` in one standard input, and their token types.

    A standard input is ``prefix + prompt + mid + response + suffix``.
    """

    prefix: Ids
    mid: Ids
    suffix: Ids
    type_first: int | None  # token type of prefix/prompt/mid (None: the model takes none)
    type_second: int | None
    decoder: bool

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.mid) + len(self.suffix)

    @classmethod
    def probe(cls, tokenizer: Any, template: str, decoder: bool) -> PairLayout:
        """Read the special tokens off the tokenizer's own pair encoding of two known words."""
        if template == "chat":  # the chat template's text already holds every special token
            return cls([], [], [], None, None, decoder)
        c = tokenizer("hello", add_special_tokens=False)["input_ids"]
        r = tokenizer("world", add_special_tokens=False)["input_ids"]
        enc = tokenizer("hello", "world")
        full = list(enc["input_ids"])
        i = _find(full, c, 0)
        j = _find(full, r, i + len(c))
        types = enc.get("token_type_ids")
        return cls(
            prefix=full[:i],
            mid=full[i + len(c) : j],
            suffix=full[j + len(r) :],
            type_first=None if types is None else int(types[i]),
            type_second=None if types is None else int(types[j]),
            decoder=decoder,
        )

    def truncate(self, prompt: Ids, responses: list[Ids], max_length: int) -> tuple[Ids, list[Ids]]:
        """The pair rule: each response keeps its first tokens that fit; the prompt keeps its
        last tokens that fit beside the LONGER response, so both see the same context."""
        cap = max(1, max_length - self.n_special)
        responses = [r[:cap] for r in responses]
        budget = cap - max(len(r) for r in responses)
        return (prompt[-budget:] if budget > 0 else []), responses

    def build(self, prompt: Ids, responses: list[Ids], max_length: int) -> dict[str, list[int]]:
        """One sequence for a prompt and one or two responses: ids, types, positions, owners, pool index.

        ``owner`` is 0 for shared tokens and i+1 for the i-th response's own tokens;
        ``pool`` holds, per response, the index of the token whose state gives its reward.
        """
        prompt, responses = self.truncate(prompt, responses, max_length)
        t1 = self.type_first or 0
        t2 = self.type_second or 0
        ids: list[int] = []
        types: list[int] = []
        pos: list[int] = []
        owner: list[int] = []

        def put(tokens: Ids, start: int, typ: int, who: int) -> None:
            ids.extend(tokens)
            types.extend([typ] * len(tokens))
            pos.extend(range(start, start + len(tokens)))
            owner.extend([who] * len(tokens))

        pool: list[int] = []
        if self.decoder:
            put(self.prefix + prompt + self.mid, 0, t1, 0)
            start = len(ids)
            for k, r in enumerate(responses):
                put(r + self.suffix, start, t2, k + 1)
                pool.append(len(ids) - 1)  # last token (the last shared one when the response is empty)
        else:
            for k in range(len(responses)):
                pool.append(len(ids))  # the response's own [CLS]
                put(self.prefix, 0, t1, k + 1)
            put(prompt + self.mid, len(self.prefix), t1, 0)
            start = len(self.prefix) + len(prompt) + len(self.mid)
            for k, r in enumerate(responses):
                put(r + self.suffix, start, t2, k + 1)
        return {"input_ids": ids, "token_type_ids": types, "position_ids": pos, "owner": owner, "pool": pool}


def _find(seq: Ids, part: Ids, start: int) -> int:
    for i in range(start, len(seq) - len(part) + 1):
        if seq[i : i + len(part)] == part:
            return i
    raise ValueError("could not locate the prompt/response in the tokenizer's pair encoding")


def collate_layouts(built: list[dict[str, list[int]]], pad_id: int, layout: PairLayout) -> dict[str, torch.Tensor]:
    """Pad built sequences to the longest and derive the boolean [B, 1, L, L] attention mask.

    ``pool_index`` indexes the flattened [B·L] states: all first responses, then all
    second responses, and so on (a lone response counts as a first; a sequence with fewer
    responses is skipped in the later rounds).
    """
    width = max(len(b["input_ids"]) for b in built)
    n = len(built)
    ids = np.full((n, width), pad_id, dtype=np.int64)
    types = np.zeros((n, width), dtype=np.int64)
    pos = np.zeros((n, width), dtype=np.int64)
    owner = np.full((n, width), -1, dtype=np.int64)
    for i, b in enumerate(built):
        m = len(b["input_ids"])
        ids[i, :m], types[i, :m] = b["input_ids"], b["token_type_ids"]
        pos[i, :m], owner[i, :m] = b["position_ids"], b["owner"]
    most = max(len(b["pool"]) for b in built)  # packed sequences may hold different numbers of responses
    pool = np.array(
        [i * width + b["pool"][k] for k in range(most) for i, b in enumerate(built) if k < len(b["pool"])],
        dtype=np.int64,
    )
    o = torch.from_numpy(owner)
    oq, ok = o[:, :, None], o[:, None, :]
    allowed = ((ok == 0) | (ok == oq)) & ((oq != 0) | (ok == 0))
    if layout.decoder:  # causal
        p = torch.from_numpy(pos)
        allowed &= p[:, None, :] <= p[:, :, None]
    allowed |= torch.eye(width, dtype=torch.bool)  # a padding row attends to itself, never to nothing
    out = {
        "input_ids": torch.from_numpy(ids),
        "position_ids": torch.from_numpy(pos),
        "attention_mask": allowed[:, None],
        "pool_index": torch.from_numpy(pool),
    }
    if layout.type_first is not None:
        out["token_type_ids"] = torch.from_numpy(types)
    return out


def _inner(model: Any) -> Any:
    """The *ForSequenceClassification model under a PEFT wrapper (adapters stay active)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def head_logits(model: Any, states: torch.Tensor) -> torch.Tensor:
    """The model's own classification head applied to chosen token states [N, H] → [N]."""
    if hasattr(model, "score"):  # decoder *ForSequenceClassification: linear layer on the last token
        return model.score(states).squeeze(-1)
    pooler = getattr(model.base_model, "pooler", None)
    if pooler is not None and hasattr(model, "classifier"):  # BERT family: pooler(first token) → classifier
        drop = getattr(model, "dropout", nn.Identity())
        return model.classifier(drop(pooler(states[:, None, :]))).squeeze(-1)
    raise NotImplementedError(f"{type(model).__name__}: no known classification head for a shared prompt")


def final_layer(model: Any) -> tuple[nn.Module, nn.Linear]:
    """(what turns a token state into the head's input, the head's last linear layer).

    Decoders: identity and ``score``; the BERT family: the pooler (its dropout is off at
    inference) and ``classifier``. ``head_logits`` = linear(pre(states)).
    """
    if hasattr(model, "score"):
        return nn.Identity(), model.score
    pooler = getattr(model.base_model, "pooler", None)
    if pooler is not None and hasattr(model, "classifier"):
        return _PoolToken(pooler), model.classifier
    raise NotImplementedError(f"{type(model).__name__}: no known classification head for a shared prompt")


class _PoolToken(nn.Module):
    def __init__(self, pooler: nn.Module) -> None:
        super().__init__()
        self.pooler = pooler

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.pooler(states[:, None, :])


def _pooled_states(model: Any, inputs: dict[str, torch.Tensor]) -> tuple[Any, torch.Tensor]:
    inner = _inner(model)
    kw = {k: v for k, v in inputs.items() if k != "pool_index"}
    if getattr(inner.config, "_attn_implementation", "sdpa") == "eager":  # eager attention ADDS its mask
        allowed = kw["attention_mask"]
        kw["attention_mask"] = torch.zeros(allowed.shape, device=allowed.device).masked_fill(
            ~allowed, torch.finfo(torch.float32).min
        )
    hidden = inner.base_model(**kw).last_hidden_state
    return inner, hidden.reshape(-1, hidden.shape[-1])[inputs["pool_index"]]


def shared_features(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The head's input features [R·B, H] of a collated batch (order of ``pool_index``)."""
    inner, states = _pooled_states(model, inputs)
    return final_layer(inner)[0](states)


def shared_rewards(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rewards [R·B] of a collated batch of shared-prompt sequences (order of ``pool_index``)."""
    inner, states = _pooled_states(model, inputs)
    return head_logits(inner, states)


@torch.no_grad()
def check_support(model: Any, tokenizer: Any, layout: PairLayout) -> str | None:
    """None when the shared-prompt layout works for this model, else why not.

    Three checks on a tiny input: the head applied to pooled states reproduces the model's
    own logits; a pair's two rewards equal each response's reward alone (4D mask and
    explicit positions honoured); a batch pads without changing rewards.
    """
    if not layout.decoder and not layout.prefix:
        return "the encoder's pair encoding has no leading [CLS]-like token to pool"
    inner = _inner(model)
    was_training = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device
        enc = tokenizer("the quick brown fox", "jumps over it", return_tensors="pt").to(dev)
        own = model(**enc).logits.squeeze(-1)
        hidden = inner.base_model(**enc).last_hidden_state
        at = hidden[:, -1] if layout.decoder else hidden[:, 0]
        if not torch.allclose(own, head_logits(inner, at), atol=1e-4):
            return "the classification head does not reproduce the model's logits"
        p = tokenizer("some shared prompt text here", add_special_tokens=False)["input_ids"]
        a = tokenizer("first answer", add_special_tokens=False)["input_ids"]
        b = tokenizer("a second and longer answer", add_special_tokens=False)["input_ids"]

        def rewards(built: list[dict[str, list[int]]]) -> torch.Tensor:
            inputs = collate_layouts(built, int(tokenizer.pad_token_id), layout)
            return shared_rewards(model, {k: v.to(dev) for k, v in inputs.items()})

        pair = rewards([layout.build(p, [a, b], 64)])
        window, _ = layout.truncate(p, [a, b], 64)  # alone, each response gets the pair's prompt window
        alone = torch.cat([rewards([layout.build(window, [r], 64)]) for r in (a, b)])
        if not torch.allclose(pair, alone, atol=1e-4):
            return "the model ignores the 4D attention mask or explicit position ids"
        padded = rewards([layout.build(p, [a, b], 64), layout.build(p + p, [b, a], 64)])
        if not torch.allclose(padded[[0, 2]], pair, atol=1e-4):
            return "rewards change with padding"
        return None
    except (AttributeError, TypeError, ValueError, NotImplementedError, RuntimeError) as e:
        return f"{type(e).__name__}: {e}"
    finally:
        model.train(was_training)


class SharedPairs:
    """Pairs tokenised once each (prompt and responses), batched as shared-prompt sequences.

    Same batching interface as ``EncodedPairs``: length-sorted batches, seeded order,
    every world-th batch per process.
    """

    def __init__(
        self,
        pairs: list[tuple[str, str, str]],
        tokenizer: Any,
        template: str,
        max_length: int,
        layout: PairLayout,
    ) -> None:
        rendered: list[tuple[Rendered, Rendered]] = [
            (render(p, a, template, tokenizer), render(p, b, template, tokenizer)) for p, a, b in pairs
        ]
        contexts = tokenize_unique(tokenizer, [ra.context for ra, _ in rendered])
        responses = tokenize_unique(tokenizer, [r.response for pair in rendered for r in pair])
        self.built = [
            layout.build(contexts[ra.context], [responses[ra.response], responses[rb.response]], max_length)
            for ra, rb in rendered
        ]
        self.lengths = np.array([len(b["input_ids"]) for b in self.built], dtype=np.int64)
        self.pad_id = int(tokenizer.pad_token_id)
        self.layout = layout
        n = len(self.built)
        # scored slots: response a of pair i is slot i, response b is slot n + i
        self.index = np.stack([np.arange(n), np.arange(n, 2 * n)], axis=1)
        self.n_scored = 2 * n

    def __len__(self) -> int:
        return len(self.built)

    def _collate(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return collate_layouts([self.built[i] for i in rows], self.pad_id, self.layout)

    def pair_batches(self, batch_size: int, seed: int | None, rank: int = 0, world: int = 1) -> Iterator[Batch]:
        """Length-sorted pair batches, collated one at a time; order shuffled with ``seed``."""
        for rows in shard_groups(self.lengths, batch_size, seed, rank, world):
            n = len(rows)
            yield Batch(self._collate(rows), torch.arange(n), torch.arange(n, 2 * n), rows)

    def score_batches(self, batch_size: int) -> list[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        """Every pair once, length-sorted, ``batch_size`` responses (two per pair) per forward:
        (scored slots [a slots…, b slots…], inputs)."""
        groups = shard_groups(self.lengths, max(1, batch_size // 2), None)
        return [(np.concatenate([rows, rows + len(self)]), self._collate(rows)) for rows in groups]


def tokenize_unique(tokenizer: Any, texts: list[str]) -> dict[str, Ids]:
    uniq = list(dict.fromkeys(texts))
    if not uniq:
        return {}
    ids = tokenizer(uniq, add_special_tokens=False)["input_ids"]
    return dict(zip(uniq, (list(x) for x in ids), strict=True))
