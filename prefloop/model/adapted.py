"""Adapted mode: a backbone fine-tuned on the labels, and K cheap heads on its features.

Frozen MiniLM features cap a reward model near 0.59 on HH, while fine-tuning the backbone
reaches the 0.63s; an ensemble of K fine-tuned models costs K× on a CPU. Adapted mode takes
the fine-tuned league at near-heads cost per cycle:

1. **adapt** — fine-tune ONE backbone (k = 1, shared-prompt layout) on the labels, warm-started
   from the previous adapted backbone when there is one;
2. **heads** — compute each pair's head-input features under it once (cached on disk, keyed
   by the backbone's version), and train K bootstrap linear heads on them with a Gaussian
   prior centred at the fine-tuned model's own head, so the ensemble spreads around the
   model the backbone learned instead of starting over;
3. **calibrate** — on the validation split the backbone never trained on (out-of-bag pairs
   are not held out from the backbone, so they cannot be used here).

At later milestones only step 2 runs — seconds — until the label count has grown by
``adapt_growth`` (×2 by default) since the backbone was adapted; then all three run again.
Scoring is one backbone forward per pair plus K dot products: about one model's cost, not K.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import torch

from prefloop.config import ModelConfig
from prefloop.errors import ModelError
from prefloop.model.backbone import EmbeddingCache
from prefloop.model.data import PairTargets, pair_digest, tensors_digest
from prefloop.model.debias import heads_balanced, length_balanced
from prefloop.model.debias_heads import as_debiased, uses_length_head
from prefloop.model.finetune import FinetuneModel
from prefloop.model.head_training import make_head, train_heads
from prefloop.model.heads import RewardHead, heads_state, load_heads, one_thread, save_heads
from prefloop.model.shared_prompt import final_layer
from prefloop.model.tracking import MetricsLog

__all__ = ["AdaptedImpl"]

_HEADS = "heads.safetensors"
_BACKBONE = "adapted_backbone"


def _backbone_config(config: ModelConfig) -> ModelConfig:
    return dataclasses.replace(config, mode="finetune", k=1, calibrate=False)


class AdaptedImpl:
    """A fine-tuned backbone (one model) + K linear heads on its features."""

    def __init__(
        self,
        config: ModelConfig,
        backbone: FinetuneModel,
        heads: list[RewardHead],
        adapted_on: int,
        backbone_version: str,
    ) -> None:
        self.config = config
        self.backbone = backbone
        self.heads = heads
        self.adapted_on = adapted_on  # labelled pairs the backbone was fine-tuned on
        self.backbone_version = backbone_version
        namespace = dataclasses.replace(config, backbone=f"adapted-{backbone_version}", gguf_file=None)
        self.cache = EmbeddingCache(config.cache_dir, namespace, "head-input")

    # ---- features -----------------------------------------------------------------------
    def _cached(self, keys: list[str], inputs: list[Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(key → cached features, key → input still to run), each distinct key once, in order."""
        found: dict[str, np.ndarray] = {}
        missing: dict[str, Any] = {}
        for key, item in zip(keys, inputs, strict=True):
            if key in found or key in missing:
                continue
            hit = self.cache.get(key)
            if hit is None:
                missing[key] = item
            else:
                found[key] = hit
        return found, missing

    def features(self, pairs: list[tuple[str, str, str]], bar: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Head-input features of a and b [n, H]; each pair runs through the backbone once, ever."""
        keys = [pair_digest(*p) for p in pairs]
        found, missing = self._cached(keys, pairs)
        if missing:
            fa, fb = self.backbone.features(list(missing.values()), bar)
            for j, key in enumerate(missing):
                found[key] = np.concatenate([fa[j], fb[j]])
                self.cache.put(key, found[key])
        if not pairs:
            return np.zeros((0, 1), np.float32), np.zeros((0, 1), np.float32)
        both = np.stack([found[k] for k in keys]).astype(np.float32)
        half = both.shape[1] // 2
        return both[:, :half], both[:, half:]

    def response_features(self, items: list[tuple[str, str]], bar: Any = None) -> np.ndarray:
        """Head-input features of each ``(prompt, response)`` alone [n, H], each computed once, ever.

        Stored under the key of the pair ``(prompt, response, response)``, whose features (both
        halves) are the response's alone, so ``features`` and this share cache entries. The
        missing ones are computed with the responses of one prompt packed into one sequence.
        """
        keys = [pair_digest(p, r, r) for p, r in items]
        found, missing = self._cached(keys, items)
        found = {key: hit[: hit.shape[0] // 2] for key, hit in found.items()}  # a response's half
        if missing:
            feats = self.backbone.response_features(list(missing.values()), bar)
            for j, key in enumerate(missing):
                found[key] = feats[j]
                self.cache.put(key, np.concatenate([feats[j], feats[j]]))
        if not items:
            return np.zeros((0, 1), np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)

    def _head_at_backbone(self, dim: int, mean: torch.Tensor, std: torch.Tensor) -> RewardHead:
        """The fine-tuned model's own last layer as a standardised linear head (same function)."""
        _, linear = final_layer(self.backbone._unwrapped().model)
        head = RewardHead(dim, "linear", 1, 0.0, self.config.tie_model)
        with torch.no_grad():
            net = cast(torch.nn.Linear, head.net)  # a "linear" head
            net.weight.copy_(linear.weight.detach().float().reshape(1, -1))
            net.bias.copy_(linear.bias.detach().float() if linear.bias is not None else torch.zeros(1))
            head.theta.copy_(self.backbone._unwrapped().theta[0].detach())
        head.restandardize(mean, std)
        return head

    # ---- training -----------------------------------------------------------------------
    @classmethod
    def fit(
        cls, train: PairTargets, val: PairTargets | None, config: ModelConfig, parent: Any, log: MetricsLog, bar: Any
    ) -> tuple[AdaptedImpl, np.ndarray, dict[str, Any]]:
        n = len(train) + (len(val) if val is not None else 0)
        prev = parent._impl if parent is not None and isinstance(parent._impl, AdaptedImpl) else None
        stats: dict[str, Any] = {}
        if prev is not None and n < config.adapt_growth * prev.adapted_on:
            backbone, adapted_on, version = prev.backbone, prev.adapted_on, prev.backbone_version
            stats["adapted"] = False
        else:  # fine-tune (again), from the previous adapted backbone when there is one
            warm = SimpleNamespace(_impl=prev.backbone) if prev is not None else None
            backbone, _thetas, ft = FinetuneModel.fit(
                train, val, _backbone_config(config), warm, log, bar, adapted_step=True
            )
            adapted_on, version = n, tensors_digest(backbone.state_tensors())  # a model version's content hash
            stats.update(
                adapted=True,
                finetune_seconds=ft["fit_seconds"],
                finetune_pairs_per_s=ft["pairs_per_s"],
                finetune_epochs=ft["epochs"],
                share_prompt=ft["share_prompt"],
            )
        if not backbone.shared:
            raise ModelError(
                f"adapted mode reads features in the shared-prompt layout, which "
                f"{config.resolved_backbone()} cannot take; use mode 'finetune' or 'heads'"
            )
        self = cls(config, backbone, [], adapted_on, version)
        emb = self.features(train.pairs, bar)
        val_emb = self.features(val.pairs, bar) if val is not None else None
        both = np.concatenate(emb)
        mean, std = torch.from_numpy(both.mean(0)), torch.from_numpy(both.std(0) + 1e-6)
        centre = self._head_at_backbone(both.shape[1], mean, std)
        heads_cfg = dataclasses.replace(config, mode="heads", head="linear")
        if uses_length_head(config):  # the fine-tuned reward is the quality reward's starting point
            centre = as_debiased(centre, heads_cfg)
        if heads_balanced(config):  # the heads learn from length-balanced labels; the backbone did not
            train, val = length_balanced(train), length_balanced(val) if val is not None else None
        heads, reports, _oob = train_heads(
            emb, train, val_emb, val, heads_cfg, [centre] * config.k, log, bar, prior_at_parent=True
        )
        self.heads = heads
        stats.update(
            {
                "train_loss": float(np.mean([r["train_loss"] for r in reports])),
                "train_loss_start": float(np.mean([r["train_loss_start"] for r in reports])),
                "val_loss": None if val is None else float(np.mean([r["val_loss"] for r in reports])),
                "epochs": [r["epochs"] for r in reports],
                "adapted_on": adapted_on,
                "backbone_version": version,
            }
        )
        stats.setdefault("share_prompt", backbone.shared)
        return self, np.array([h.theta.item() for h in heads]), stats

    # ---- inference ----------------------------------------------------------------------
    @torch.no_grad()
    def member_rewards(self, pairs: list[tuple[str, str, str]], bar: Any) -> tuple[np.ndarray, np.ndarray]:
        fa, fb = self.features(pairs, bar)
        if len(pairs) == 0:
            z = np.zeros((0, len(self.heads)))
            return z, z
        xa, xb = torch.from_numpy(fa), torch.from_numpy(fb)
        with one_thread():
            ra = torch.stack([h.eval()(xa) for h in self.heads], dim=1).double().numpy()
            rb = torch.stack([h(xb) for h in self.heads], dim=1).double().numpy()
        return ra, rb

    @torch.no_grad()
    def response_rewards(self, items: list[tuple[str, str]], bar: Any = None) -> np.ndarray:
        """Each ``(prompt, response)``'s reward alone per member [n, K] (what the pair
        ``(prompt, response, response)`` gives it), from its cached or packed features."""
        if not items:
            return np.zeros((0, len(self.heads)))
        x = torch.from_numpy(self.response_features(items, bar))
        with one_thread():
            return torch.stack([h.eval()(x) for h in self.heads], dim=1).double().numpy()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {**heads_state(self.heads), "backbone_version": torch.tensor([int(self.backbone_version, 16) % (2**62)])}

    # ---- persistence --------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Heads, metadata and the backbone; a backbone already saved in another version is hard-linked.

        A heads-only retrain keeps its parent's backbone, so its files are linked, not copied:
        versions share the disk blocks (MiniLM's are ~90 MB a version), and deleting one
        version's folder leaves the others whole. Where links cannot be made, the files are copied.
        """
        source = _saved_backbone(self.backbone, self.backbone_version)
        if source is not None and source != (path / _BACKBONE).absolute():
            link_tree(source, path / _BACKBONE)
        else:
            self.backbone.save(path / _BACKBONE)
        save_heads(self.heads, path / _HEADS)
        (path / "adapted.json").write_text(
            json.dumps({"adapted_on": self.adapted_on, "backbone_version": self.backbone_version})
        )
        self.backbone.saved_at = (path / _BACKBONE).absolute()

    @classmethod
    def load(cls, path: Path, config: ModelConfig) -> AdaptedImpl:
        backbone = FinetuneModel.load(path / _BACKBONE, _backbone_config(config))
        linear = dataclasses.replace(config, head="linear")
        heads = load_heads(path / _HEADS, config.k, lambda dim: make_head(linear, dim))
        meta = json.loads((path / "adapted.json").read_text())
        backbone.saved_at = (path / _BACKBONE).absolute()
        return cls(config, backbone, heads, int(meta["adapted_on"]), str(meta["backbone_version"]))


def _saved_backbone(backbone: FinetuneModel, version: str) -> Path | None:
    """A folder that holds this backbone's files, if it still holds this version's."""
    folder = backbone.saved_at
    if folder is None:
        return None
    meta = folder.parent / "adapted.json"
    try:
        if json.loads(meta.read_text())["backbone_version"] != version:
            return None
    except (OSError, ValueError, KeyError):
        return None
    return folder if folder.is_dir() else None


def link_tree(source: Path, target: Path) -> None:
    """Recreate ``source``'s files under ``target`` as hard links (copies where a link cannot be made)."""
    for src in sorted(source.rglob("*")):
        dst = target / src.relative_to(source)
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.unlink(missing_ok=True)
        try:
            os.link(src, dst)
        except OSError:  # another file system, or links not supported
            shutil.copy2(src, dst)
