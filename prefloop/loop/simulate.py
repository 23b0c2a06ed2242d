"""Offline active-learning experiments: which acquisition strategy needs the fewest labels?

For each strategy and seed: a labelled seed set → train an ensemble → score the unlabelled
pool → select a batch (never a pair already labelled) → the simulated annotators label it
(``SimulatedBackend``, in-process: push tasks, pull labels) → retrain warm-started from the
parent → evaluate on a held-out test split. The test split and the seed set depend only on
the seed, so every strategy starts from the same seed model and is scored on the same pairs.

It joins model + acquisition + the simulated backend only: no SQL store is involved.
Outputs in ``out_dir``: ``curves.csv`` / ``curves.json`` (labels → held-out accuracy,
log-loss, ECE, reward–length r, accuracy per length group and worst-group accuracy per
strategy, seed and round), ``learning_curves.png`` (mean ± std over seeds) and ``summary.md``
(labels each strategy needs to reach random's final accuracy; worst-group accuracy).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prefloop.acquisition import ProbPool, get_strategy
from prefloop.backends.base import BackendSettings
from prefloop.backends.simulated import SimulatedBackend
from prefloop.data.ingest import read_records
from prefloop.data.shapes import ShapeOptions
from prefloop.errors import PrefloopError
from prefloop.loop.simulate_report import (
    labels_to_reach,
    plot_curves,
    summary_markdown,
    worst_group_markdown,
    worst_group_table,
)
from prefloop.model import ModelConfig, PreferenceExample, RewardEnsemble, evaluate_prediction
from prefloop.model.length_groups import GROUPS
from prefloop.types import Choice, PairRecord, TaskRequest


class SimulationError(PrefloopError, ValueError):
    """An experiment that cannot run as asked (a seed set larger than the pool, a test file without labels).

    Exit code 1, as before; a ``ValueError`` for callers that caught one.
    """


__all__ = [
    "LabeledPool",
    "SimulationError",
    "SimulationResult",
    "labels_to_reach",
    "run_simulation",
    "simulate_files",
]

Pair = tuple[str, str, str]


@dataclass
class LabeledPool:
    """Pairs in canonical orientation (response a has the smaller content hash) with oracle labels."""

    keys: list[str]
    pairs: list[Pair]
    labels: list[Choice]
    prompt_ids: np.ndarray

    @classmethod
    def from_records(cls, records: Sequence[PairRecord]) -> LabeledPool:
        keys: list[str] = []
        pairs: list[Pair] = []
        labels: list[Choice] = []
        prompts: dict[str, int] = {}
        pids: list[int] = []
        seen: set[str] = set()
        for r in records:
            c = r.canonical()
            if c.label is None or c.label is Choice.SKIP:
                continue
            if c.key in seen or c.hash_a == c.hash_b:
                continue
            seen.add(c.key)
            keys.append(c.key)
            pairs.append((r.prompt, c.response_a, c.response_b))
            labels.append(c.label)
            pids.append(prompts.setdefault(r.prompt, len(prompts)))
        return cls(keys, pairs, labels, np.asarray(pids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class SimulationResult:
    """Learning curves (one row per strategy, seed and round), the summary table and file paths."""

    curves: list[dict[str, Any]]
    table: list[dict[str, Any]]
    selected: dict[str, dict[int, list[str]]]  # strategy → seed → pair keys in selection order
    paths: dict[str, Path] = field(default_factory=dict)


@dataclass
class _Run:
    """One (strategy, seed) loop's state."""

    strategy: str
    seed: int
    backend: SimulatedBackend
    labeled: np.ndarray  # [n] bool over the whole LabeledPool
    examples: list[PreferenceExample] = field(default_factory=list)
    cursor: str | None = None
    seen: set[tuple[str, str]] = field(default_factory=set)
    order: list[str] = field(default_factory=list)


def _split(
    n: int, seed: int, test_fraction: float, seed_size: int, fixed_test: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(test, pool, seed set ⊂ pool) index arrays; depend on the seed only.

    With ``fixed_test`` (an independent test file) the test set is the same for every seed
    and the seed only draws the seed set from the rest.
    """
    perm = np.random.default_rng(seed).permutation(n)
    if fixed_test is not None:
        is_test = np.zeros(n, dtype=bool)
        is_test[fixed_test] = True
        test, pool = np.sort(fixed_test), perm[~is_test[perm]]
    else:
        n_test = round(n * test_fraction)
        test, pool = np.sort(perm[:n_test]), perm[n_test:]
    if seed_size > len(pool):
        raise SimulationError(f"seed_size={seed_size} exceeds the {len(pool)} pool pairs: lower it")
    return test, np.sort(pool), np.sort(pool[:seed_size])


def _label(
    run: _Run, data: LabeledPool, index: Mapping[str, int], idx: np.ndarray, strategy: str, scores: np.ndarray | None
) -> list[PreferenceExample]:
    """Push pool pairs ``idx`` to the simulated annotators and pull what they answer."""
    if run.labeled[idx].any():
        raise RuntimeError("a pair was selected twice: acquisition exclusions failed")
    run.labeled[idx] = True
    run.order.extend(data.keys[i] for i in idx)
    run.backend.push_tasks(
        [
            TaskRequest(
                pair_key=data.keys[i],
                prompt=data.pairs[i][0],
                response_a=data.pairs[i][1],
                response_b=data.pairs[i][2],
                strategy=strategy,
                score=None if scores is None else float(scores[j]),
            )
            for j, i in enumerate(idx)
        ]
    )
    result = run.backend.pull_labels(since=run.cursor)
    run.cursor = result.cursor
    new = []
    for lb in result.labels:  # the pull window overlaps: drop what was seen (as the store does)
        if (lb.source_id, lb.version) in run.seen:
            continue
        run.seen.add((lb.source_id, lb.version))
        prompt, a, b = data.pairs[index[lb.pair_key]]
        new.append(PreferenceExample(prompt, a, b, lb.choice, lb.strength))
    run.examples.extend(new)
    return new


def _evaluate(ens: RewardEnsemble, data: LabeledPool, test: np.ndarray) -> dict[str, Any]:
    pairs = [data.pairs[i] for i in test]
    pred = ens.predict(pairs)
    m, _, _ = evaluate_prediction(pred, pairs, [data.labels[i] for i in test])
    groups = m["length_groups"]
    return {
        **{k: m[k] for k in ("accuracy", "log_loss", "ece", "n", "length_corr")},
        **{f"{name}_accuracy": groups["groups"][name]["accuracy"] for name in GROUPS},
        "worst_group": groups["worst_group"],
        "worst_group_accuracy": groups["worst_group_accuracy"],
        "length_bias_flag": groups["length_bias_flag"],
    }


def _config(base: ModelConfig, seed: int, step: int) -> ModelConfig:
    return dataclasses.replace(base, seed=seed * 1000 + step)


def _one_run(
    run: _Run,
    data: LabeledPool,
    test: np.ndarray,
    pool: np.ndarray,
    seed_idx: np.ndarray,
    seed_model: RewardEnsemble | None,
    cfg: ModelConfig,
    batch_size: int,
    rounds: int,
    params: Mapping[str, Any],
    bar: Any,
    task: Any,
    warm_start: bool,
) -> tuple[list[dict[str, Any]], RewardEnsemble]:
    index = {k: i for i, k in enumerate(data.keys)}
    strategy = get_strategy(run.strategy, **params)
    seed_examples = _label(run, data, index, seed_idx, "seed", None)
    ens = seed_model or RewardEnsemble.train(seed_examples, _config(cfg, run.seed, 0), progress=False)[0]
    pool_pairs = [data.pairs[i] for i in pool]
    emb = ens.embed_pairs(pool_pairs) if strategy.needs_embeddings else None
    len_a = np.array([len(a) for _, a, _ in pool_pairs], dtype=np.int64)  # characters (length_aware)
    len_b = np.array([len(b) for _, _, b in pool_pairs], dtype=np.int64)
    rows = [
        {
            "round": 0,
            "n_labels": int(run.labeled.sum()),
            "n_annotations": len(run.examples),
            **_evaluate(ens, data, test),
        }
    ]
    first = ens
    for r in range(1, rounds + 1):
        free = ~run.labeled[pool]
        if not free.any():
            break
        pred = ens.predict(pool_pairs)
        prob_pool = ProbPool(
            p_members=pred.p_a_members,
            p_tie=pred.p_tie_members,
            embeddings=emb,
            prompt_ids=data.prompt_ids[pool],
            exclude=~free,
            rewards_a=pred.reward_a_members,
            rewards_b=pred.reward_b_members,
            len_a=len_a,
            len_b=len_b,
        )
        sel = strategy.select(prob_pool, batch_size, np.random.default_rng([run.seed, r]))
        old = list(run.examples)
        new = _label(run, data, index, pool[sel.indices], strategy.name, sel.scores)
        if warm_start:  # new labels + a replay sample of the old, from the parent's weights
            ens, report = RewardEnsemble.train(new, _config(cfg, run.seed, r), parent=ens, replay=old, progress=False)
        else:  # from scratch on every label so far (reloads the backbone; embeddings are cached)
            ens, report = RewardEnsemble.train(run.examples, _config(cfg, run.seed, r), progress=False)
        rows.append(
            {
                "round": r,
                "n_labels": int(run.labeled.sum()),
                "n_annotations": len(run.examples),
                "train_seconds": report.get("seconds"),
                **_evaluate(ens, data, test),
            }
        )
        bar.update(
            task,
            advance=1,
            info=f"{run.strategy} seed {run.seed}: {rows[-1]['n_labels']} labels, acc {rows[-1]['accuracy']:.3f}",
        )
    return rows, first


def run_simulation(
    pairs: Sequence[PairRecord],
    strategies: Sequence[str],
    seeds: Sequence[int],
    seed_size: int = 50,
    batch_size: int = 50,
    rounds: int = 10,
    test_fraction: float = 0.2,
    model_config: ModelConfig | None = None,
    out_dir: str | Path = "simulation",
    progress: bool = True,
    noise_rate: float = 0.0,
    tie_rate: float = 0.0,
    strategy_params: Mapping[str, Mapping[str, Any]] | None = None,
    baseline: str = "random",
    warm_start: bool = True,
    test_pairs: Sequence[PairRecord] | None = None,
) -> SimulationResult:
    """Run every strategy for every seed and write curves, plot and summary into ``out_dir``.

    ``pairs`` carry their oracle ``label`` (unlabelled ones are ignored). The simulated
    annotators answer with ``noise_rate`` wrong sides and ``tie_rate`` ties; evaluation is
    against the oracle labels. ``strategy_params`` maps a strategy spec to its parameters
    (e.g. ``{"diverse:bald": {"shortlist": 200}}``). ``baseline`` names the strategy whose
    final accuracy the summary's "labels to reach" column targets. ``warm_start`` False
    retrains each round from scratch on all labels instead of warm-starting from the parent.
    ``test_pairs`` (an independent labelled file) replace the ``test_fraction`` split: every
    seed is scored on them, and a test pair that also appears in ``pairs`` leaves the pool.
    ``model_config`` unset: ``[model]``'s defaults, the mode the loop trains (adapted).
    """
    fixed_test = None
    if test_pairs is not None:
        data = LabeledPool.from_records([*test_pairs, *pairs])
        n_test = len(LabeledPool.from_records(test_pairs))
        if n_test == 0:
            raise SimulationError("the test file has no labelled pairs")
        fixed_test = np.arange(n_test)
    else:
        data = LabeledPool.from_records(pairs)
    cfg = model_config or ModelConfig()  # the loop's model: [model]'s defaults (adapted mode)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves: list[dict[str, Any]] = []
    selected: dict[str, dict[int, list[str]]] = {s: {} for s in strategies}
    from prefloop.model.tracking import progress_bar

    with tempfile.TemporaryDirectory(prefix="prefloop-sim-") as state, progress_bar(progress) as bar:
        task = bar.add_task("simulate", total=len(strategies) * len(seeds) * rounds)
        for seed in seeds:
            test, pool, seed_idx = _split(len(data), seed, test_fraction, seed_size, fixed_test)
            oracle = {data.keys[i]: data.labels[i].value for i in range(len(data))}
            seed_model: RewardEnsemble | None = None
            for spec in strategies:
                settings = BackendSettings(
                    project=f"{spec}-{seed}",
                    url=f"{state}/{spec}-{seed}",
                    extra={"oracle": oracle, "noise_rate": noise_rate, "tie_rate": tie_rate, "seed": seed},
                )
                run = _Run(spec, seed, SimulatedBackend(settings), np.zeros(len(data), dtype=bool))
                params = (strategy_params or {}).get(spec, {})
                rows, seed_model = _one_run(
                    run, data, test, pool, seed_idx, seed_model, cfg, batch_size, rounds, params, bar, task, warm_start
                )
                curves.extend({"strategy": spec, "seed": seed, **row} for row in rows)
                selected[spec][seed] = run.order
    table = labels_to_reach(curves, baseline)
    return SimulationResult(curves, table, selected, _write(out, curves, table, cfg, baseline))


def _write(
    out: Path, curves: list[dict[str, Any]], table: list[dict[str, Any]], cfg: ModelConfig, baseline: str
) -> dict[str, Path]:
    cols = [
        "strategy",
        "seed",
        "round",
        "n_labels",
        "n_annotations",
        "accuracy",
        "log_loss",
        "ece",
        "length_corr",
        *(f"{name}_accuracy" for name in GROUPS),
        "worst_group",
        "worst_group_accuracy",
        "n",
        "train_seconds",
    ]
    paths = {
        "csv": out / "curves.csv",
        "json": out / "curves.json",
        "png": out / "learning_curves.png",
        "summary": out / "summary.md",
    }
    with paths["csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(curves)
    worst = worst_group_table(curves, baseline)
    paths["json"].write_text(
        json.dumps(
            {
                "curves": curves,
                "table": table,
                "worst_group_table": worst,
                "model_config": cfg.to_dict(),
                "baseline": baseline,
            },
            indent=1,
            default=str,
        )
    )
    plot_curves(curves, paths["png"])
    paths["summary"].write_text(summary_markdown(table, baseline) + "\n" + worst_group_markdown(worst, baseline))
    return paths


def simulate_files(
    paths: Sequence[str],
    test_file: str | None = None,
    *,
    strict: bool = False,
    say: Callable[[str], None] = print,
    **settings: Any,
) -> SimulationResult:
    """``prefloop simulate``: the labelled files as one pool (``test_file``: an independent test set), then
    ``run_simulation(..., **settings)``. What each file gave (pairs, skipped rows) is told to ``say``."""
    opts = ShapeOptions(strict=strict)
    records: list[PairRecord] = []
    for path in paths:
        read = read_records(path, opts=opts, strict=strict)
        records.extend(read.records)
        say(
            f"{path}: {len(read.records):,} pairs, {read.degenerate:,} degenerate rows skipped, "
            f"{read.invalid:,} invalid rows skipped"
        )
    test_records = None
    if test_file:
        read = read_records(test_file, opts=opts, strict=strict)
        test_records = read.records
        say(
            f"{test_file} (test): {len(read.records):,} pairs, {read.degenerate:,} degenerate rows "
            f"skipped, {read.invalid:,} invalid rows skipped"
        )
    return run_simulation(records, test_pairs=test_records, **settings)
