"""Summaries of simulated learning curves: labels needed to reach a baseline, plots, a markdown table.

Pure functions of the curve rows ``run_simulation`` writes (dicts with ``strategy``, ``seed``,
``n_labels``, ``accuracy``, ``log_loss``, ``worst_group_accuracy``, ``<group>_accuracy``);
numpy + matplotlib only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "curve_matrix",
    "labels_to_reach",
    "plot_curves",
    "summary_markdown",
    "worst_group_markdown",
    "worst_group_table",
]


def curve_matrix(
    curves: Sequence[dict[str, Any]], strategy: str, metric: str = "accuracy"
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(label counts [R], values [n_seeds, R], seeds) on the label counts every seed reached."""
    rows = [r for r in curves if r["strategy"] == strategy]
    seeds = sorted({int(r["seed"]) for r in rows})
    per_seed = [{int(r["n_labels"]): r[metric] for r in rows if int(r["seed"]) == s} for s in seeds]
    grid = sorted(set.intersection(*(set(d) for d in per_seed))) if per_seed else []
    values = np.array([[np.nan if d[n] is None else float(d[n]) for n in grid] for d in per_seed])
    return np.asarray(grid, dtype=np.int64), values.reshape(len(seeds), len(grid)), seeds


def _first_reach(grid: np.ndarray, curve: np.ndarray, target: float) -> float:
    hit = np.flatnonzero(curve >= target - 1e-12)
    return float(grid[hit[0]]) if hit.size else float("inf")


def labels_to_reach(
    curves: Sequence[dict[str, Any]], baseline: str = "random", n_boot: int = 2000, seed: int = 0
) -> list[dict[str, Any]]:
    """For each strategy: labels its mean curve needs to reach the baseline's final mean accuracy.

    ``target`` = mean over seeds of the baseline's accuracy at its largest label count.
    ``labels_needed`` = first label count where the strategy's seed-mean accuracy ≥ target
    (None: never). The CI resamples seeds with replacement (the same resample for the
    baseline and the strategy, since seeds share splits), recomputing target and crossing;
    ``fraction`` = labels_needed / the baseline's final label count.
    """
    strategies = list(dict.fromkeys(r["strategy"] for r in curves))
    if baseline not in strategies:
        return []
    b_grid, b_acc, b_seeds = curve_matrix(curves, baseline)
    b_final = int(b_grid[-1])
    rng = np.random.default_rng(seed)
    table = []
    for name in strategies:
        grid, acc, seeds = curve_matrix(curves, name)
        common = [s for s in seeds if s in b_seeds]
        a = acc[[seeds.index(s) for s in common]]
        b = b_acc[[b_seeds.index(s) for s in common]]
        target = float(np.nanmean(b[:, -1]))
        needed = _first_reach(grid, np.nanmean(a, axis=0), target)
        boots = []
        for _ in range(n_boot):
            pick = rng.integers(0, len(common), len(common))
            boots.append(_first_reach(grid, np.nanmean(a[pick], axis=0), float(np.nanmean(b[pick, -1]))))
        lo, hi = np.quantile(np.asarray(boots), [0.025, 0.975], method="inverted_cdf")  # inf-safe
        mean_curve = np.nanmean(a, axis=0)
        paired = _paired_differences(grid, a, b_grid, b, rng, n_boot)
        table.append(
            {
                **paired,
                "strategy": name,
                "seeds": len(common),
                "target_accuracy": target,
                "labels_needed": None if np.isinf(needed) else int(needed),
                "ci_low": None if np.isinf(lo) else float(lo),
                "ci_high": None if np.isinf(hi) else float(hi),
                "fraction": None if np.isinf(needed) else needed / b_final,
                "fraction_ci_high": None if np.isinf(hi) else float(hi) / b_final,
                "final_labels": int(grid[-1]),
                "final_accuracy": float(mean_curve[-1]),
                "final_accuracy_std": float(np.nanstd(a[:, -1])),
                "best_accuracy": float(np.nanmax(mean_curve)),
                "best_at_labels": int(grid[int(np.nanargmax(mean_curve))]),
            }
        )
    return table


def _paired_differences(
    grid: np.ndarray, a: np.ndarray, b_grid: np.ndarray, b: np.ndarray, rng: np.random.Generator, n_boot: int
) -> dict[str, Any]:
    """Strategy minus baseline, paired by seed (seeds share their test set and seed set).

    ``aulc``: mean accuracy over the label counts both curves reached (area under the
    learning curve per label); ``aulc_diff`` and ``final_diff`` with 95 % intervals from
    resampling seeds (a single seed gives no interval).
    """
    common = np.intersect1d(grid, b_grid)
    if common.size == 0:
        return {"aulc": None, "aulc_diff": None, "aulc_diff_ci": None, "final_diff": None, "final_diff_ci": None}
    ai = a[:, np.searchsorted(grid, common)]
    bi = b[:, np.searchsorted(b_grid, common)]
    d_area = np.nanmean(ai, axis=1) - np.nanmean(bi, axis=1)  # per seed
    d_final = ai[:, -1] - bi[:, -1]

    def ci(values: np.ndarray) -> list[float] | None:
        if len(values) < 2:
            return None
        boots = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
        return [float(v) for v in np.quantile(boots, [0.025, 0.975])]

    return {
        "aulc": float(np.nanmean(ai)),
        "aulc_diff": float(d_area.mean()),
        "aulc_diff_ci": ci(d_area),
        "final_diff": float(d_final.mean()),
        "final_diff_ci": ci(d_final),
    }


def summary_markdown(table: Sequence[dict[str, Any]], baseline: str = "random") -> str:
    """The ``labels_to_reach`` table as markdown."""

    def fmt(v: Any, spec: str = "") -> str:
        return "never" if v is None else format(v, spec)

    lines = [
        f"Target: {baseline}'s final mean held-out accuracy. Labels = labelled pairs (seed set included); "
        "95% CI by resampling seeds.",
        "",
        "| strategy | labels to reach target | 95% CI | share of baseline's labels | final acc (± sd over "
        "seeds) | best mean acc (at labels) |",
        "|---|---|---|---|---|---|",
    ]
    for r in table:
        ci = f"[{fmt(r['ci_low'], '.0f')}, {fmt(r['ci_high'], '.0f')}]"
        lines.append(
            f"| {r['strategy']} | {fmt(r['labels_needed'])} | {ci} | {fmt(r['fraction'], '.0%')} "
            f"| {r['final_accuracy']:.3f} ± {r['final_accuracy_std']:.3f} @ {r['final_labels']} "
            f"| {r['best_accuracy']:.3f} ({r['best_at_labels']}) |"
        )
    if table:
        lines.append("")
        lines.append(f"Target accuracy: {table[0]['target_accuracy']:.3f}")
        lines += [
            "",
            f"Paired by seed against {baseline} (95% CI by resampling seeds; AULC = mean held-out "
            "accuracy over the label counts both curves reached):",
            "",
            "| strategy | AULC | AULC − baseline | 95% CI | final − baseline | 95% CI |",
            "|---|---|---|---|---|---|",
        ]
        for r in table:
            if r.get("aulc") is None:
                continue
            lines.append(
                f"| {r['strategy']} | {r['aulc']:.3f} | {100 * r['aulc_diff']:+.1f} pts "
                f"| {_pts(r['aulc_diff_ci'])} | {100 * r['final_diff']:+.1f} pts "
                f"| {_pts(r['final_diff_ci'])} |"
            )
    return "\n".join(lines) + "\n"


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def worst_group_table(
    curves: Sequence[dict[str, Any]], baseline: str = "random", n_boot: int = 2000, seed: int = 0
) -> list[dict[str, Any]]:
    """For each strategy: worst-group accuracy at its last label count and per label spent, against ``baseline``.

    ``final_worst_group_accuracy`` (± sd over seeds), ``worst_group_aulc`` (mean worst-group
    accuracy over the label counts of the curve), each group's final accuracy, the group that
    is worst most often at the end, and the paired-by-seed differences to ``baseline``
    (``aulc_diff``, ``final_diff`` and intervals, as in ``labels_to_reach``). None where the
    test set has no length group of ``MIN_GROUP`` pairs.
    """
    from prefloop.model.length_groups import GROUPS

    strategies = list(dict.fromkeys(r["strategy"] for r in curves))
    rng = np.random.default_rng(seed)
    base = curve_matrix(curves, baseline, "worst_group_accuracy") if baseline in strategies else None
    table = []
    for name in strategies:
        grid, values, seeds = curve_matrix(curves, name, "worst_group_accuracy")
        if not grid.size:
            continue
        final_rows = [r for r in curves if r["strategy"] == name and int(r["n_labels"]) == int(grid[-1])]
        worst_names = [r.get("worst_group") for r in final_rows if r.get("worst_group")]
        row: dict[str, Any] = {
            "strategy": name,
            "seeds": len(seeds),
            "final_labels": int(grid[-1]),
            "final_worst_group_accuracy": _finite(np.nanmean(values[:, -1]))
            if np.isfinite(values[:, -1]).any()
            else None,
            "final_worst_group_accuracy_std": _finite(np.nanstd(values[:, -1]))
            if np.isfinite(values[:, -1]).any()
            else None,
            "worst_group_aulc": _finite(np.nanmean(values)) if np.isfinite(values).any() else None,
            "worst_group": max(set(worst_names), key=worst_names.count) if worst_names else None,
        }
        for group in GROUPS:
            accs = [r[f"{group}_accuracy"] for r in final_rows if r.get(f"{group}_accuracy") is not None]
            row[f"final_{group}_accuracy"] = float(np.mean(accs)) if accs else None
        row.update({"aulc_diff": None, "aulc_diff_ci": None, "final_diff": None, "final_diff_ci": None})
        if base is not None and name != baseline:
            b_grid, b_values, b_seeds = base
            common = [s for s in seeds if s in b_seeds]
            a = values[[seeds.index(s) for s in common]]
            b = b_values[[b_seeds.index(s) for s in common]]
            with warnings.catch_warnings():  # a seed whose test set has no eligible group is all NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                paired = _paired_differences(grid, a, b_grid, b, rng, n_boot)
            for key in ("aulc_diff", "final_diff"):
                row[key] = None if paired[key] is None else _finite(paired[key])
                row[f"{key}_ci"] = paired[f"{key}_ci"] if row[key] is not None else None
        table.append(row)
    return table


def worst_group_markdown(table: Sequence[dict[str, Any]], baseline: str = "random") -> str:
    """The ``worst_group_table`` as markdown."""
    from prefloop.model.length_groups import GROUPS, MIN_GROUP, NEAR_EQUAL

    def acc(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    def pts(v: float | None, ci: list[float] | None) -> str:
        return "–" if v is None else f"{100 * v:+.1f} pts {_pts(ci)}"

    lines = [
        "Worst-group accuracy: the lowest held-out accuracy among the length groups (the human chose the "
        f"longer / the shorter response, or lengths within {100 * NEAR_EQUAL:.0f} % of each other) with "
        f"{MIN_GROUP} or more pairs. A strategy that only sharpens the length rule raises overall accuracy "
        "and lowers this one. Per label spent: its mean over the curve; against "
        f"{baseline} paired by seed (95% CI by resampling seeds).",
        "",
        "| strategy | final worst group (± sd) @ labels | worst group | "
        + " | ".join(f"final {g}" for g in GROUPS)
        + f" | worst group per label spent | − {baseline} (curve) | − {baseline} (final) |",
        "|---|---|---|" + "---|" * len(GROUPS) + "---|---|---|",
    ]
    for r in table:
        sd = "" if r["final_worst_group_accuracy_std"] is None else f" ± {r['final_worst_group_accuracy_std']:.3f}"
        lines.append(
            f"| {r['strategy']} | {acc(r['final_worst_group_accuracy'])}{sd} @ {r['final_labels']} "
            f"| {r['worst_group'] or '–'} | "
            + " | ".join(acc(r[f"final_{g}_accuracy"]) for g in GROUPS)
            + f" | {acc(r['worst_group_aulc'])} | {pts(r['aulc_diff'], r['aulc_diff_ci'])} "
            f"| {pts(r['final_diff'], r['final_diff_ci'])} |"
        )
    if table and all(r["worst_group_aulc"] is None for r in table):
        lines += ["", f"No length group of the test set has {MIN_GROUP} pairs: use a larger test set."]
    return "\n".join(lines) + "\n"


def _pts(ci: list[float] | None) -> str:
    return "n/a (one seed)" if ci is None else f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def plot_curves(curves: Sequence[dict[str, Any]], path: str | Path, reference: float | None = None) -> Path:
    """Accuracy, log-loss and (where known) worst-group accuracy against labels: seed mean ± sd per strategy."""
    from prefloop.model.plots import pyplot, save_figure

    plt = pyplot()

    metrics = ["accuracy", "log_loss"]
    if any(r.get("worst_group_accuracy") is not None for r in curves):
        metrics.append("worst_group_accuracy")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2))
    for name in dict.fromkeys(r["strategy"] for r in curves):
        for ax, metric in zip(axes, metrics, strict=True):
            grid, values, seeds = curve_matrix(curves, name, metric)
            with warnings.catch_warnings():  # label counts where no seed has a value stay NaN (a gap)
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, sd = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
            ax.plot(grid, mean, marker=".", label=f"{name} (n={len(seeds)})")
            ax.fill_between(grid, mean - sd, mean + sd, alpha=0.15)
    if reference is not None:
        axes[0].axhline(reference, color="grey", linestyle="--", linewidth=1, label=f"reference {reference:.2f}")
    axes[0].set_ylabel("held-out accuracy")
    axes[1].set_ylabel("held-out log-loss")
    if len(metrics) > 2:
        axes[2].set_ylabel("held-out worst-group accuracy")
        axes[2].axhline(0.5, color="grey", linestyle=":", linewidth=1)
    for ax in axes:
        ax.set_xlabel("labelled pairs")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return save_figure(fig, path, dpi=120)
