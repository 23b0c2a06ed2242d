"""Heatmap of pairwise Cohen's kappa between annotators (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_kappa_heatmap"]


def plot_kappa_heatmap(names: Sequence[str], kappa: np.ndarray, path: str | Path) -> Path:
    """Write the κ matrix as a PNG heatmap (NaN cells, pairs without shared items, stay blank)."""
    from prefloop.model.plots import pyplot, save_figure

    plt = pyplot()
    kappa = np.asarray(kappa, dtype=np.float64)
    n = len(names)
    size = max(4.0, 0.6 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(np.ma.masked_invalid(kappa), vmin=-1.0, vmax=1.0, cmap="RdYlGn")
    ax.set_xticks(range(n), labels=list(names), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(names))
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if not np.isnan(kappa[i, j]):
                    ax.text(j, i, f"{kappa[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_title("Cohen's κ between annotators")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return save_figure(fig, path)
