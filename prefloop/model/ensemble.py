"""The reward-model ensemble: train (fresh or from a parent), predict, embed, save, load."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefloop.config import ModelConfig
from prefloop.errors import ModelError
from prefloop.model.calibration import (
    MIN_CALIBRATION_PAIRS,
    calibration_warning,
    fit_temperature,
    length_slope,
    log_lengths,
)
from prefloop.model.data import PairTargets, PreferenceExample, aggregate, replay_sample, split, tensors_digest
from prefloop.model.debias import length_balanced
from prefloop.model.evaluate import evaluate_prediction
from prefloop.model.length_groups import flat_group_metrics
from prefloop.model.losses import probs_numpy
from prefloop.model.modes import can_warm_start, impl_class
from prefloop.model.tracking import MetricsLog, progress_bar

__all__ = ["EnsemblePrediction", "RewardEnsemble"]

Pair = tuple[str, str, str]


@dataclass
class EnsemblePrediction:
    """Per-pair, per-member predictions; the means over members are properties.

    ``p_a_members[i, k]`` is member k's P(a≻b) for pair i (shape [n, K]); each member's
    P(a≻b) + P(b≻a) + P(tie) = 1, so the means sum to 1 too.
    """

    reward_a_members: np.ndarray  # [n, K]
    reward_b_members: np.ndarray  # [n, K]
    p_a_members: np.ndarray  # [n, K]
    p_b_members: np.ndarray  # [n, K]
    p_tie_members: np.ndarray  # [n, K]

    @classmethod
    def concat(cls, parts: list[EnsemblePrediction]) -> EnsemblePrediction:
        """The predictions of consecutive shares of a list of pairs, as one."""
        fields = ("reward_a_members", "reward_b_members", "p_a_members", "p_b_members", "p_tie_members")
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))

    @property
    def p_a(self) -> np.ndarray:
        return self.p_a_members.mean(axis=1)

    @property
    def p_b(self) -> np.ndarray:
        return self.p_b_members.mean(axis=1)

    @property
    def p_tie(self) -> np.ndarray:
        return self.p_tie_members.mean(axis=1)

    @property
    def reward_a(self) -> np.ndarray:
        return self.reward_a_members.mean(axis=1)

    @property
    def reward_b(self) -> np.ndarray:
        return self.reward_b_members.mean(axis=1)

    @property
    def spread(self) -> np.ndarray:
        """Standard deviation over members of P(a≻b) (0 for K=1)."""
        return self.p_a_members.std(axis=1)


class RewardEnsemble:
    """K reward models over one backbone (``heads`` or ``finetune`` mode; see ModelConfig)."""

    def __init__(self, config: ModelConfig, impl: Any, thetas: np.ndarray, meta: dict[str, Any]) -> None:
        self.config = config
        self._impl = impl  # HeadsImpl or FinetuneModel
        self.thetas = np.asarray(thetas, dtype=np.float64)  # raw tie parameter per member
        self.meta = meta
        self._embedder: Any = None  # finetune mode: frozen base backbone, built on first use

    @property
    def version(self) -> str:
        """Content hash of the weights: two identical trainings share it."""
        return str(self.meta["version"])

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def parent_version(self) -> str | None:
        return self.meta.get("parent_version")

    # ---- training -------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        examples: list[PreferenceExample],
        config: ModelConfig,
        parent: RewardEnsemble | None = None,
        replay: list[PreferenceExample] | None = None,
        progress: bool = True,
    ) -> tuple[RewardEnsemble, dict[str, Any]]:
        """Train an ensemble on ``examples`` (plus a replay sample of ``replay``).

        With ``parent``, every member starts from the parent's weights (same mode and
        backbone required) and ``examples`` are the NEW labels: ``config.replay_fraction ×
        len(examples)`` labels drawn from ``replay`` are added. Returns the ensemble and a
        report (losses, counts, seconds, pairs/s, epochs, lineage).
        """
        if config.threads:
            torch.set_num_threads(config.threads)
        if parent is not None and not can_warm_start(parent.config, config):
            raise ModelError("warm start needs the parent's mode, backbone and k; train without parent instead")
        fraction = config.resolved_replay_fraction()
        used = replay_sample(examples, replay or [], fraction, config.seed) if replay else examples
        targets = aggregate(used, config.margin_scale)
        if reweights_labels(config):  # the other methods change the model or the likelihood, not the labels
            targets = length_balanced(targets)
        if len(targets) == 0:
            raise ModelError("no usable labels (all skipped?): label some pairs first")
        held_out = config.val_fraction if config.holds_out_split() else 0.0
        min_val = MIN_CALIBRATION_PAIRS if config.calibrate else 0  # enough held-out pairs to fit T on
        train_t, val_t = split(targets, held_out, config.seed, config.val_split, min_val)
        log = MetricsLog(config, enabled=_is_main_process())
        t0 = time.perf_counter()
        with progress_bar(progress and _is_main_process()) as bar:
            impl, thetas, stats = impl_class(config.mode).fit(train_t, val_t, config, parent, log, bar)
            calibration: tuple[Any, Any, Any] | None = stats.pop("calibration", None)  # (delta, wins, mask)
            cal_pairs = train_t.pairs  # what the impl's calibration gaps belong to (heads: out-of-bag pairs)
            val_rewards: tuple[np.ndarray, np.ndarray] | None = None  # raw, kept for the validation metrics
            if config.calibrate and calibration is None and val_t is not None:
                val_rewards = impl.member_rewards(val_t.pairs, bar)
                calibration = (val_rewards[0] - val_rewards[1], val_t.wins, None)
                cal_pairs = val_t.pairs
        temperature, slope = 1.0, 0.0
        warnings: list[str] = list(stats.pop("warnings", []))
        if config.calibrate and calibration is not None:
            delta, wins, mask = calibration
            if removes_length_slope(config):
                len_gap = log_lengths([p[1] for p in cal_pairs]) - log_lengths([p[2] for p in cal_pairs])
                slope, slope_se, slope_n = length_slope(delta, wins, len_gap, mask)
                stats |= {"length_slope": slope, "length_slope_se": slope_se, "length_slope_pairs": slope_n}
                delta = delta - slope * len_gap[:, None]
                calibration = (delta, wins, mask)
            temperature = fit_temperature(delta, wins, thetas, config.tie_model, mask)
            stats["calibration_pairs"] = len(wins)
        if config.calibrate:
            delta, wins, mask = calibration if calibration is not None else (None, None, None)
            said = calibration_warning(temperature, delta, wins, thetas, config.tie_model, mask)
            if said:
                warnings.append(said)
        if removes_length_slope(config) and not config.calibrate:
            warnings.append(
                "debias_residual is on but calibrate is off: the length slope is measured on the held-out pairs "
                "calibration uses, so none was removed; set [model] calibrate = true"
            )
        if config.mode == "finetune" and _debias(config) in ("project", "project_balanced"):
            warnings.append(
                f"debias {config.debias_method!r} in finetune mode: no heads to project, "
                "labels reweighted as 'balanced'"
            )
        stats["temperature"] = temperature
        stats["warnings"] = warnings
        seconds = time.perf_counter() - t0
        if config.mode == "finetune" and config.share_prompt and not stats["share_prompt"]:
            # the saved config must name the layout the weights were trained in
            config = dataclasses.replace(config, share_prompt=False)
            impl.config = config
        calibrated = {"temperature": torch.tensor(temperature)}
        if slope:
            calibrated["length_slope"] = torch.tensor(slope)
        version = tensors_digest({**impl.state_tensors(), **calibrated})
        meta = {
            "version": version,
            "name": config.name or f"rm-{version[:8]}",
            "parent_version": parent.version if parent else None,
            "parent_name": parent.name if parent else None,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "temperature": temperature,
            "length_slope": slope,
        }
        ens = cls(config, impl, thetas, meta)
        report = {
            **stats,
            "n_examples": len(used),
            "n_new_examples": len(examples),
            "n_replayed": len(used) - len(examples),
            "n_pairs": len(targets),
            "n_train_pairs": len(train_t),
            "n_val_pairs": 0 if val_t is None else len(val_t),
            "seconds": seconds,
            "version": version,
            "name": meta["name"],
            "parent_version": meta["parent_version"],
            "parent_name": meta["parent_name"],
            "mode": config.mode,
            "k": config.k,
        }
        ens.meta["train_report"] = report
        if val_t is not None:  # the held-out split's metrics, by length group: stored with the version, and
            validation = validation_metrics(ens, val_t, val_rewards)  # to W&B / the metrics JSON when on
            if log.active:
                log.log(validation)
            report.update(validation)
        log.finish(report)
        return ens, report

    # ---- inference ------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """Calibration temperature T fitted after training (1.0 for models saved before it existed)."""
        return float(self.meta.get("temperature", 1.0))

    @property
    def length_slope(self) -> float:
        """γ removed from every raw reward per unit of log(1 + characters) (0 unless ``debias_residual``)."""
        return float(self.meta.get("length_slope", 0.0))

    def calibrated(self, raw: np.ndarray, responses: Sequence[str]) -> np.ndarray:
        """Raw member rewards [n, K] of ``responses`` as the model's rewards: (r − γ·log(1 + chars)) / T."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.length_slope:
            raw = raw - self.length_slope * log_lengths(responses)[:, None]
        return raw / self.temperature

    def member_rewards(self, pairs: list[Pair], progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated rewards of a and b per member (``calibrated``): two arrays [n, K]."""
        with progress_bar(progress) as bar:
            ra, rb = self._impl.member_rewards(pairs, bar)
        return self.calibrated(ra, [p[1] for p in pairs]), self.calibrated(rb, [p[2] for p in pairs])

    def response_rewards(self, items: list[tuple[str, str]], progress: bool = False) -> np.ndarray:
        """Calibrated reward of each ``(prompt, response)`` alone per member [n, K] (raw / T).

        A response's reward here is what it gets as both sides of the pair ``(prompt, response,
        response)``: it depends on no other response. Each distinct item is scored once; the
        finetune and adapted modes pack the responses of one prompt into one sequence (and
        adapted mode reads and fills its feature cache), the heads mode embeds each text once.
        """
        uniq = list(dict.fromkeys(items))
        if not uniq:
            return np.zeros((len(items), self.config.k))
        with progress_bar(progress) as bar:
            if hasattr(self._impl, "response_rewards"):
                rewards = np.asarray(self._impl.response_rewards(uniq, bar), np.float64)
            else:
                rewards = np.asarray(self._impl.member_rewards([(p, r, r) for p, r in uniq], bar)[0], np.float64)
        where = {item: i for i, item in enumerate(uniq)}
        return self.calibrated(rewards[[where[item] for item in items]], [r for _, r in items])

    def predict(self, pairs: list[Pair], progress: bool = False) -> EnsemblePrediction:
        """P(a≻b), P(b≻a), P(tie) per member for each (prompt, a, b) pair."""
        return self.prediction(*self.member_rewards(pairs, progress))

    def prediction(self, ra: np.ndarray, rb: np.ndarray) -> EnsemblePrediction:
        """The prediction from calibrated member rewards of a and b (``member_rewards``' two [n, K] arrays)."""
        probs = probs_numpy(ra - rb, self.thetas[None, :], self.config.tie_model)
        return EnsemblePrediction(ra, rb, probs[..., 0], probs[..., 1], probs[..., 2])

    def embed_pairs(self, pairs: list[Pair], progress: bool = False) -> np.ndarray:
        """Order-free pair features [n, 2d] for diversity: [(e_a + e_b)/2, |e_a − e_b|].

        e is the frozen backbone's pooled embedding of prompt+response (cached on disk); in
        finetune mode it is the base backbone's, not the fine-tuned one's.
        """
        if self.config.mode == "heads":
            embedder = self._impl.embedder
        else:
            if self._embedder is None:
                from prefloop.model.heads import Embedder

                self._embedder = Embedder.shared(self.config)
            embedder = self._embedder
        with progress_bar(progress) as bar:
            ea, eb = embedder.embed_pairs(pairs, bar)
        return np.concatenate([(ea + eb) / 2, np.abs(ea - eb)], axis=1)

    # ---- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Weights as safetensors, config.json and meta.json (version, lineage, tie params)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._impl.save(path)
        (path / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
        meta = {**self.meta, "thetas": self.thetas.tolist()}
        (path / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> RewardEnsemble:
        """Inverse of ``save``: predictions are identical to the saved ensemble's."""
        path = Path(path)
        saved = json.loads((path / "config.json").read_text())
        saved.setdefault("share_prompt", False)  # saved before the option existed: trained one sequence per response
        config = ModelConfig.from_saved(saved)
        meta = json.loads((path / "meta.json").read_text())
        impl = impl_class(config.mode).load(path, config)
        return cls(config, impl, np.asarray(meta.pop("thetas")), meta)


def reweights_labels(config: ModelConfig) -> bool:
    """Whether every label is reweighted by length group before training: 'balanced'; 'project' and
    'project_balanced' in finetune mode (no heads to project); 'project_balanced' in heads mode. In
    adapted mode 'project_balanced' reweights the heads' labels only (``debias.heads_balanced``): its
    backbone is fine-tuned on the plain labels, which measured better (docs/benchmarks.md, #23)."""
    method = _debias(config)
    if method == "balanced":
        return True
    if config.mode == "finetune":
        return method in ("project", "project_balanced")
    return method == "project_balanced" and config.mode == "heads"


def removes_length_slope(config: ModelConfig) -> bool:
    """Whether training measures the reward's remaining length slope on held-out pairs and removes it."""
    return config.debias == "length" and config.debias_residual


def _debias(config: ModelConfig) -> str:
    """The length-debias method in force ('none' when off)."""
    return config.debias_method if config.debias == "length" else "none"


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def validation_metrics(
    ens: RewardEnsemble, val: PairTargets, raw_rewards: tuple[np.ndarray, np.ndarray] | None = None
) -> dict[str, float]:
    """``val_accuracy``, ``val_log_loss``, ``val_ece``, ``val_length_corr`` and the length-group keys
    (``length_groups/<group>/accuracy``, ``worst_group_accuracy``, ...) of ``ens`` on held-out pairs.

    A pair's label is its heavier side (a tie when a and b weigh the same or the tie weighs most).
    ``raw_rewards``: the members' uncalibrated rewards of ``val`` if calibration already computed
    them, so the held-out pairs are not run through the model a second time.
    """
    wa, wb, wt = val.wins[:, 0], val.wins[:, 1], val.wins[:, 2]
    labels = np.where((wa > wb) & (wa >= wt), "a", np.where((wb > wa) & (wb >= wt), "b", "tie"))
    labels = np.where(val.wins.sum(axis=1) > 0, labels, "skip")
    if raw_rewards is None:
        pred = ens.predict(val.pairs, progress=False)
    else:
        pairs = val.pairs
        pred = ens.prediction(
            ens.calibrated(raw_rewards[0], [p[1] for p in pairs]), ens.calibrated(raw_rewards[1], [p[2] for p in pairs])
        )
    metrics, _, _ = evaluate_prediction(pred, val.pairs, list(labels))
    out = {
        f"val_{k}": float(metrics[k]) for k in ("accuracy", "log_loss", "ece", "length_corr") if metrics[k] is not None
    }
    return {**out, **flat_group_metrics(metrics["length_groups"])}
