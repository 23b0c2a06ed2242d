"""Several objectives in one model: a shared backbone and one head ensemble per dimension.

``MultiObjectiveModel.train({"helpful": [...], "harmless": [...]}, config)`` trains ONE model
version. Each dimension gets its own K-member ensemble of heads, trained only on that
dimension's labels, with its own tie parameters, early stopping and calibration temperature —
exactly what a single-objective model of that mode does — over a backbone the dimensions share:

- **heads** mode: the shared backbone is the frozen embedder; every dimension's heads read the
  same cached features (each text is embedded once, whatever the number of dimensions);
- **adapted** mode: ONE backbone is fine-tuned multi-task on the labels of every dimension,
  each pair's prompt tagged with its dimension (``[helpful]`` …, a task tag as in T5's task
  prefixes, so one output learns a dimension-conditioned reward and the conflicting dimensions
  do not fight over one target). The tag ENDS the prompt: prompts are cut from the left to fit
  ``max_length``, so a leading tag would be the first thing lost on a long dialogue. Then each
  dimension's K linear heads are fitted on that backbone's features of its own tagged pairs,
  centred at the backbone's output; a pair is held out of the backbone's training exactly when it
  is held out of its dimension's heads (``val_split = "hashed"``), so each head stops early and is
  calibrated on pairs the backbone never saw. Scoring a pair for a dimension runs the backbone on
  the pair tagged with that dimension. Every dimension's folder holds the shared backbone's files
  as hard links to one copy (copies only where the file system cannot link). On a small CPU run
  (280 pairs per dimension, one seed) the harmless head was 1.7 points below its own single
  model, inside the noise (docs/benchmarks.md);
- **finetune** mode is refused (K LoRA members per dimension would multiply the cost by D).

Each head's rewards are also centred (``prefloop.objectives``): member k's mean reward over the
dimension's training responses is saved and subtracted, so a threshold such as
``harmless ≥ 0`` has a meaning. Saved as ``objectives.json`` plus one ``head-<i>/`` folder per
dimension holding a ``RewardEnsemble``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from prefloop.config import ModelConfig
from prefloop.errors import ModelError
from prefloop.model.data import PreferenceExample, aggregate
from prefloop.model.ensemble import EnsemblePrediction, RewardEnsemble
from prefloop.model.modes import can_warm_start
from prefloop.objectives import CombinedReward, combined_probabilities

__all__ = ["MULTI_MODES", "MultiObjectiveModel", "is_multi_objective", "tag_pairs"]

Pair = tuple[str, str, str]
MULTI_MODES = ("heads", "adapted")
_FILE = "objectives.json"


def is_multi_objective(path: str | Path) -> bool:
    """Whether the model saved at ``path`` is a multi-objective one."""
    return (Path(path) / _FILE).is_file()


def tag_pairs(pairs: list[Pair], dimension: str) -> list[Pair]:
    """The pairs with the dimension's tag ending the prompt (adapted mode's shared backbone; the end
    survives the left truncation of long prompts)."""
    return [(f"{prompt}\n[{dimension}]", a, b) for prompt, a, b in pairs]


def _warm_backbone(
    parent: MultiObjectiveModel | None, examples: dict[str, list[PreferenceExample]], config: ModelConfig
) -> RewardEnsemble | None:
    """The parent's head ensemble whose adapted backbone the shared training may start from (None: fresh)."""
    if parent is None or not parent.tagged or set(parent.dimensions) != set(examples):
        return None
    first = next(iter(parent.heads.values()))
    return first if can_warm_start(first.config, config) else None


def _tag_examples(examples: list[PreferenceExample], dimension: str) -> list[PreferenceExample]:
    return [dataclasses.replace(ex, prompt=f"{ex.prompt}\n[{dimension}]") for ex in examples]


class MultiObjectiveModel:
    """One model version with a head ensemble per dimension (see the module docstring)."""

    def __init__(
        self,
        config: ModelConfig,
        heads: dict[str, RewardEnsemble],
        offsets: dict[str, np.ndarray],
        meta: dict[str, Any],
    ) -> None:
        self.config = config
        self.heads = heads
        self.offsets = {d: np.asarray(o, dtype=np.float64) for d, o in offsets.items()}
        self.meta = meta

    # ---- identity -------------------------------------------------------------------------
    @property
    def dimensions(self) -> list[str]:
        return list(self.heads)

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def tagged(self) -> bool:
        """Adapted mode: the backbone reads each pair tagged with its dimension."""
        return bool(self.meta.get("tagged", False))

    def head(self, dimension: str | None = None) -> RewardEnsemble:
        """The ensemble of one dimension (default: the first); its inputs must be ``inputs(pairs, d)``."""
        dim = self.dimensions[0] if dimension is None else dimension
        if dim not in self.heads:
            raise ModelError(f"model {self.name} has no head for dimension {dim!r}; its dimensions: {self._known()}")
        return self.heads[dim]

    def _known(self) -> str:
        return ", ".join(self.dimensions)

    def inputs(self, pairs: list[Pair], dimension: str) -> list[Pair]:
        return tag_pairs(pairs, dimension) if self.tagged else list(pairs)

    # ---- training -------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        examples: dict[str, list[PreferenceExample]],
        config: ModelConfig,
        progress: bool = True,
        parent: MultiObjectiveModel | None = None,
    ) -> tuple[MultiObjectiveModel, dict[str, Any]]:
        """Train one head ensemble per dimension of ``examples`` (dimension → its labels only).

        ``examples`` hold every label of each dimension (the heads are refitted on all of them).
        With an adapted ``parent`` of the same dimensions and settings, the shared backbone is the
        parent's until the labelled pairs have grown ``adapt_growth``-fold since it was fine-tuned,
        then fine-tuned again from it, as a single-objective adapted model's is; otherwise (heads
        mode, other dimensions or settings) the parent is lineage only.
        """
        if config.mode not in MULTI_MODES:
            raise ModelError(
                f"several dimensions in one model need mode 'heads' or 'adapted', not {config.mode!r} "
                "(finetune mode would train K LoRA members per dimension); use --mode heads or --mode adapted"
            )
        empty = [d for d, ex in examples.items() if not ex]
        if empty or len(examples) < 1:
            raise ModelError(f"no labels of dimension {', '.join(empty)}: ingest some with `--dimension NAME`")
        t0 = time.perf_counter()
        tagged = config.mode == "adapted"
        # adapted: a pair is held out of the shared backbone's training exactly when it is held out of
        # its dimension's heads, so each head stops early and calibrates on pairs the backbone never saw
        head_config = dataclasses.replace(
            config, name=None, metrics_path=None, val_split="hashed" if tagged else config.val_split
        )
        shared: RewardEnsemble | None = None
        reports: dict[str, Any] = {}
        shared_report: dict[str, Any] | None = None
        if tagged:  # one backbone fine-tuned on every dimension's tagged labels
            union = [ex for d, exs in examples.items() for ex in _tag_examples(exs, d)]
            warm = _warm_backbone(parent, examples, head_config)
            shared, rep = RewardEnsemble.train(union, head_config, parent=warm, progress=progress)
            keep = ("n_pairs", "n_val_pairs", "adapted", "seconds", "finetune_seconds", "backbone_version")
            shared_report = {k: rep.get(k) for k in keep}
        heads: dict[str, RewardEnsemble] = {}
        offsets: dict[str, np.ndarray] = {}
        for dim, exs in examples.items():
            own = _tag_examples(exs, dim) if tagged else exs
            # adapted: the shared model is the parent; its backbone is reused (the labels of one
            # dimension never reach adapt_growth × the union), only this dimension's heads train
            growth = dataclasses.replace(head_config, adapt_growth=float("inf")) if tagged else head_config
            ens, rep = RewardEnsemble.train(own, growth, parent=shared, progress=progress)
            heads[dim] = ens
            targets = aggregate(own, config.margin_scale)
            ra, rb = ens.member_rewards(targets.pairs)
            offsets[dim] = np.concatenate([ra, rb]).mean(axis=0) if len(ra) else np.zeros(len(ens.thetas))
            reports[dim] = {
                k: rep.get(k)
                for k in ("n_pairs", "n_train_pairs", "n_val_pairs", "val_loss", "train_loss", "temperature", "seconds")
            }
        version = _combined_version({d: e.version for d, e in heads.items()}, offsets)
        meta = {
            "version": version,
            "name": config.name or f"rm-{version[:8]}",
            "dimensions": list(heads),
            "tagged": tagged,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "parent_version": parent.version if parent is not None else None,
        }
        model = cls(config, heads, offsets, meta)
        report = {
            "dimensions": list(heads),
            "per_dimension": reports,
            "warnings": [f"{d}: {w}" for d, r in reports.items() for w in r.get("warnings", [])],
            "n_examples": sum(len(e) for e in examples.values()),
            "n_pairs": sum(r["n_pairs"] for r in reports.values()),
            "shared_backbone": shared_report,
            "seconds": time.perf_counter() - t0,
            "version": version,
            "name": meta["name"],
            "mode": config.mode,
            "k": config.k,
        }
        model.meta["train_report"] = report
        return model, report

    # ---- inference ------------------------------------------------------------------------
    def predict(self, pairs: list[Pair], dimension: str | None = None, progress: bool = False) -> EnsemblePrediction:
        """One dimension's P(a≻b), P(b≻a), P(tie) per member (default: the first dimension)."""
        dim = self.dimensions[0] if dimension is None else dimension
        return self.head(dim).predict(self.inputs(pairs, dim), progress=progress)

    def predict_all(self, pairs: list[Pair], progress: bool = False) -> dict[str, EnsemblePrediction]:
        """Every dimension's predictions, in the model's dimension order."""
        return {d: self.predict(pairs, d, progress) for d in self.dimensions}

    def centred_rewards(self, pred: EnsemblePrediction, dimension: str) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated rewards of a and b [n, K] minus member k's mean over the dimension's training responses."""
        off = self.offsets[dimension][None, :]
        return pred.reward_a_members - off, pred.reward_b_members - off

    def combine(self, preds: dict[str, EnsemblePrediction], spec: CombinedReward) -> EnsemblePrediction:
        """The combined reward's predictions (``prefloop.objectives``): P_k(a≻b) = σ(R_k(a) − R_k(b)), no ties."""
        missing = [d for d in spec.dimensions if d not in self.heads]
        if missing:
            raise ModelError(
                f"[objectives] reads {', '.join(missing)}, but model {self.name} has no head for it; "
                f"its dimensions: {self._known()}. Fix [objectives] or train with those --dimension"
            )
        ra, rb = {}, {}
        for d in spec.dimensions:
            ra[d], rb[d] = self.centred_rewards(preds[d], d)
        cra, crb, p = combined_probabilities(ra, rb, spec)
        return EnsemblePrediction(cra, crb, p, 1.0 - p, np.zeros_like(p))

    def embed_pairs(self, pairs: list[Pair], progress: bool = False) -> np.ndarray:
        """Order-free pair features for diversity (the frozen base backbone's, as single models)."""
        return self.head().embed_pairs(pairs, progress)

    # ---- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for i, ens in enumerate(self.heads.values()):
            ens.save(path / f"head-{i}")
        (path / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
        meta = {**self.meta, "offsets": {d: o.tolist() for d, o in self.offsets.items()}}
        (path / _FILE).write_text(json.dumps(meta, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> MultiObjectiveModel:
        path = Path(path)
        meta = json.loads((path / _FILE).read_text())
        config = ModelConfig.from_saved(json.loads((path / "config.json").read_text()))
        offsets = meta.pop("offsets")
        heads = {d: RewardEnsemble.load(path / f"head-{i}") for i, d in enumerate(meta["dimensions"])}
        return cls(config, heads, offsets, meta)


def _combined_version(versions: dict[str, str], offsets: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for dim, version in versions.items():
        h.update(f"{dim}\x00{version}\x00".encode())
        h.update(np.asarray(offsets[dim], dtype=np.float64).tobytes())
    return h.hexdigest()[:16]
