"""Loading a backbone (encoder or decoder), dynamic-padding batches, pooling, embedding cache.

Decoders (Llama, GPT-2 …) get a pad token (EOS or UNK when none is set), left padding, and
last-token pooling; encoders (BERT …) keep right padding and mean pooling.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prefloop.config import ModelConfig
from prefloop.errors import ConfigError, ModelError

__all__ = [
    "EmbeddingCache",
    "autocast",
    "collate",
    "disable_dropout",
    "is_decoder",
    "length_sorted_batches",
    "load_backbone",
    "pool",
]


def is_decoder(model_config: Any) -> bool:
    """True for causal LMs (last-token pooling), False for masked-LM encoders."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return model_config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def load_tokenizer(config: ModelConfig, path: str | None = None) -> Any:
    from transformers import AutoTokenizer

    name = path or config.resolved_backbone()
    try:
        tok = AutoTokenizer.from_pretrained(name, gguf_file=config.resolved_gguf_file())
    except OSError as exc:  # not a folder, not a Hub name, or not in the offline cache
        if path is not None:
            raise
        raise ConfigError(
            f"[model] backbone {name!r} (--backbone, PREFLOOP_MODEL_BACKBONE) cannot be loaded: "
            f"{str(exc).splitlines()[0][:200]}. Allowed: a local folder holding a transformers model "
            "(config.json, tokenizer files) or a Hugging Face Hub name already in the local cache "
            "(HF_HUB_OFFLINE=1 reads only that); leave it unset for the packaged all-MiniLM-L6-v2"
        ) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return tok


def load_backbone(config: ModelConfig, path: str | None = None) -> tuple[Any, Any]:
    """(tokenizer, AutoModelForSequenceClassification with one output) for ``config``.

    ``path`` overrides the backbone location (a saved fine-tuned model).
    """
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    src = path or config.resolved_backbone()
    gguf = None if path else config.resolved_gguf_file()
    tok = load_tokenizer(config, src if path else None)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialised classifier" is expected here
    hf_logging.disable_progress_bar()
    try:
        with _without_gguf_bar(gguf is not None):
            model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=1, gguf_file=gguf)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    model.config.pad_token_id = tok.pad_token_id
    if is_decoder(model.config):
        tok.padding_side = "left"
    if config.disable_dropout:
        disable_dropout(model)
    return tok, model


_GGUF_BAR = "de-quantizing GGUF tensors"


@contextlib.contextmanager
def _without_gguf_bar(active: bool) -> Iterator[None]:
    """Drop transformers' GGUF de-quantisation progress bar (its own tqdm, which ``disable_progress_bar``
    does not reach: about 270 updates in a cron log per load); anything else written to stderr passes."""
    if not active:
        yield
        return
    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf):
            yield
    finally:
        kept = [part for part in re.split(r"(?<=[\r\n])", buf.getvalue()) if part and _GGUF_BAR not in part]
        if "".join(kept).strip():
            sys.stderr.write("".join(kept))


def disable_dropout(model: nn.Module) -> None:
    """Set every dropout probability to 0 (the largest single training cost on CPU)."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    for attr in ("hidden_dropout_prob", "attention_probs_dropout_prob", "attention_dropout", "dropout"):
        if isinstance(getattr(model.config, attr, None), float):
            setattr(model.config, attr, 0.0)


def autocast(enabled: bool, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast where asked and supported, else a no-op."""
    if enabled and (device.type == "cpu" or torch.cuda.is_bf16_supported()):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def collate(encoded: list[dict[str, list[int]]], pad_id: int, left: bool) -> dict[str, torch.Tensor]:
    """Dynamic padding to the longest sequence of this batch."""
    width = max(len(e["input_ids"]) for e in encoded)
    out: dict[str, torch.Tensor] = {}
    for key in encoded[0]:
        fill = pad_id if key == "input_ids" else 0
        rows = []
        for e in encoded:
            pad = [fill] * (width - len(e[key]))
            rows.append(pad + e[key] if left else e[key] + pad)
        out[key] = torch.tensor(rows, dtype=torch.long)
    masks = []
    for e in encoded:
        n = len(e["input_ids"])
        masks.append([0] * (width - n) + [1] * n if left else [1] * n + [0] * (width - n))
    out["attention_mask"] = torch.tensor(masks, dtype=torch.long)
    return out


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), to pad little."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """[B, T, H] → [B, H]: 'mean' over real tokens, 'last' real token, or 'cls' (first)."""
    if how == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    if how == "last":
        pos = torch.arange(mask.shape[1], device=mask.device)
        idx = (pos * mask).argmax(-1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]
    if how == "cls":
        return hidden[:, 0]
    raise ModelError(f"unknown pooling {how!r}; use 'auto', 'mean', 'last' or 'cls' ([model] pooling)")


class EmbeddingCache:
    """On-disk cache of pooled embeddings, one ``.npy`` per rendered text.

    Keyed by backbone + GGUF file + max_length + pooling (the namespace folder) and the
    rendered text's hash, so identical prompt+response inputs are embedded once, across
    rounds and processes (writes go through a temporary file and an atomic rename).
    """

    def __init__(self, root: str | os.PathLike[str] | None, config: ModelConfig, pooling: str) -> None:
        base = Path(root or os.environ.get("PREFLOOP_CACHE") or Path.home() / ".cache/prefloop/embeddings").absolute()
        ident = f"{config.resolved_backbone()}|{config.resolved_gguf_file()}|{config.max_length}|{pooling}"
        self.dir = base / hashlib.sha256(ident.encode()).hexdigest()[:16]
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "namespace.txt").write_text(ident + "\n")

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        p = self._path(key)
        if not p.exists():
            return None
        try:
            return np.load(p)
        except (OSError, ValueError):  # a torn write from a killed process: recompute
            return None

    def put(self, key: str, value: np.ndarray) -> None:
        p = self._path(key)
        p.parent.mkdir(exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, value.astype(np.float32))
        os.replace(tmp, p)
