"""Reliability diagram and reward-vs-length scatter (matplotlib, headless Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prefloop.model.evaluate import _both_orientations, calibration_bins, label_codes

__all__ = ["plot_length_groups", "plot_reliability", "plot_reward_vs_length", "pyplot", "save_figure"]


def pyplot() -> Any:
    """matplotlib.pyplot on the headless Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Write a figure as PNG (creating the folder) and free it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def plot_reliability(
    p_a: np.ndarray,
    labels: Sequence[Any],
    path: str | Path,
    p_tie: np.ndarray | None = None,
    n_bins: int = 15,
    title: str = "Reliability (both orientations)",
) -> Path:
    """PNG reliability diagram of P(a | not tie) over both orientations of decisive pairs."""
    plt = pyplot()
    p_a = np.asarray(p_a, float)
    p_t = np.zeros_like(p_a) if p_tie is None else np.asarray(p_tie, float)
    q = p_a / np.clip(1 - p_t, 1e-12, None)
    code = label_codes(labels)
    dec = (code == 0) | (code == 1)
    qq, yy = _both_orientations(q[dec], (code[dec] == 0).astype(float))
    bins = calibration_bins(qq, yy, n_bins)
    centers = (np.arange(n_bins) + 0.5) / n_bins
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    nz = bins["count"] > 0
    ax.bar(centers[nz], bins["accuracy"][nz], width=1 / n_bins, edgecolor="k", alpha=0.7, label="observed")
    ax.plot([0, 1], [0, 1], "k--", label="perfect")
    ax.plot(bins["confidence"][nz], bins["accuracy"][nz], "o-", color="C3", label="observed vs mean confidence")
    ax.set_ylabel("fraction preferred")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax2.bar(centers, bins["count"], width=1 / n_bins, edgecolor="k")
    ax2.set_xlabel("predicted P(preferred)")
    ax2.set_ylabel("count")
    return save_figure(fig, path)


def plot_reward_vs_length(
    rewards: np.ndarray,
    lengths: np.ndarray,
    path: str | Path,
    title: str = "Reward vs response length",
) -> Path:
    """PNG scatter of reward against length, with a least-squares line and Pearson r."""
    plt = pyplot()
    r, n = np.asarray(rewards, float), np.asarray(lengths, float)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(n, r, s=6, alpha=0.4)
    if len(r) > 1 and np.std(n) > 0 and np.std(r) > 0:
        slope, icpt = np.polyfit(n, r, 1)
        xs = np.linspace(n.min(), n.max(), 50)
        ax.plot(xs, slope * xs + icpt, color="C3")
        title += f" (r = {np.corrcoef(n, r)[0, 1]:.3f})"
    ax.set_xlabel("response length (characters)")
    ax.set_ylabel("reward")
    ax.set_title(title)
    return save_figure(fig, path)


def plot_length_groups(
    metrics: dict[str, Any], path: str | Path, overall: float | None = None, title: str = "Accuracy by length group"
) -> Path:
    """PNG bar chart of ``length_groups.group_metrics``: accuracy per group with its 95 % interval, coin at 0.5."""
    from prefloop.model.length_groups import GROUPS, MIN_GROUP

    plt = pyplot()
    rows = [metrics["groups"][name] for name in GROUPS]
    acc = np.array([np.nan if r["accuracy"] is None else r["accuracy"] for r in rows])
    low = np.array([0.0 if r["ci_low"] is None else r["accuracy"] - r["ci_low"] for r in rows])
    high = np.array([0.0 if r["ci_high"] is None else r["ci_high"] - r["accuracy"] for r in rows])
    colors = [
        "0.7"
        if r["n"] < MIN_GROUP
        else "C3"
        if name == metrics["worst_group"] and metrics["length_bias_flag"]
        else "C0"
        for name, r in zip(GROUPS, rows, strict=True)
    ]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    x = np.arange(len(GROUPS))
    ax.bar(x, np.nan_to_num(acc), yerr=np.vstack([low, high]).tolist(), color=colors, capsize=5, edgecolor="k")
    ax.axhline(0.5, color="k", ls=":", lw=1, label="coin (0.5)")
    if overall is not None:
        ax.axhline(overall, color="C2", ls="--", lw=1, label=f"overall {overall:.3f}")
    ax.set_xticks(x, [f"{name}\nn={r['n']}" for name, r in zip(GROUPS, rows, strict=True)])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (95 % CI)")
    worst = metrics["worst_group"]
    ax.set_title(f"{title}\nworst: {worst} {metrics['worst_group_accuracy']:.3f}" if worst else title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)
