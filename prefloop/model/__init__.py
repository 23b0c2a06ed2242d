"""The reward model: plain preference records → Bradley-Terry (+ ties) ensemble → P(a≻b) per member.

This room never imports the store, the backends or acquisition; it works on plain records.
"""

from prefloop.config import ModelConfig, default_backbone
from prefloop.model.data import PreferenceExample
from prefloop.model.ensemble import EnsemblePrediction, RewardEnsemble
from prefloop.model.evaluate import evaluate_prediction, evaluate_predictions, pair_lengths
from prefloop.model.plots import plot_length_groups, plot_reliability, plot_reward_vs_length

__all__ = [
    "EnsemblePrediction",
    "ModelConfig",
    "PreferenceExample",
    "RewardEnsemble",
    "default_backbone",
    "evaluate_prediction",
    "evaluate_predictions",
    "pair_lengths",
    "plot_length_groups",
    "plot_reliability",
    "plot_reward_vs_length",
]
