"""The length term of a fine-tuned backbone's likelihood (finetune mode, and adapted mode's backbone step).

A fine-tuned backbone learns length harder than frozen features do (HH harmless: held-out
reward–length r −0.65 against −0.48 for heads), so in adapted mode debiasing only the K heads
would leave features shaped around length. With ``debias = "length"`` the backbone is trained
with the length-conditioned likelihood d + β·(ℓ_a − ℓ_b) (``debias.conditioned_gap``), β the
length-only expert's weight fitted before the step (``debias.fit_length_expert``) and never
saved: the reward the backbone keeps is the one without it.

- 'conditioned': exactly that method;
- 'odin': adapted mode's backbone uses the same β term (an ODIN length head on a fine-tuned
  backbone would need a second classifier output on every architecture); its K heads on the
  features are ODIN heads. Plain finetune mode has no heads, so 'odin' is refused there;
- 'balanced': the labels are reweighted before any step; no term here.
- 'project' (the default): the backbone trains on the plain likelihood; adapted mode's heads
  remove the length directions of its features (``debias_heads.LengthProjectedHead``), and
  plain finetune mode, which has no heads, reweights labels as 'balanced' does.
"""

from __future__ import annotations

import numpy as np
import torch

from prefloop.config import ModelConfig
from prefloop.errors import ModelError
from prefloop.model.data import PairTargets
from prefloop.model.debias import conditioned_gap, fit_length_expert
from prefloop.model.evaluate import pair_lengths

__all__ = ["BackboneLengthTerm", "check_finetune_debias"]


def check_finetune_debias(config: ModelConfig, adapted_step: bool) -> None:
    """Refuse 'odin' in plain finetune mode (no heads to split), with what to do instead."""
    if config.debias == "length" and config.debias_method == "odin" and not adapted_step:
        raise ModelError(
            "debias_method 'odin' needs a head on features: use --mode heads or adapted, "
            "or --debias-method conditioned or balanced with --mode finetune"
        )


class BackboneLengthTerm:
    """β·(ℓ_a − ℓ_b) added to a fine-tune batch's reward gaps, β fitted on length alone first."""

    def __init__(self, train: PairTargets, tie_model: str, device: torch.device) -> None:
        len_a, len_b = pair_lengths(train.pairs)
        self.beta = fit_length_expert(train.wins, len_a, len_b, tie_model)
        self.len_a = torch.from_numpy(len_a).float().to(device)
        self.len_b = torch.from_numpy(len_b).float().to(device)

    @classmethod
    def make(cls, config: ModelConfig, train: PairTargets, device: torch.device) -> BackboneLengthTerm | None:
        """The term for this config, or None when the likelihood is plain ('none', 'balanced')."""
        if config.debias != "length" or config.debias_method in ("balanced", "project", "project_balanced"):
            return None
        return cls(train, config.tie_model, device)

    def gap(self, d: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        """The training gap of the batch whose pair rows are ``rows``."""
        idx = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(self.len_a.device)
        return conditioned_gap(d, torch.tensor(self.beta, device=d.device), self.len_a[idx], self.len_b[idx])
