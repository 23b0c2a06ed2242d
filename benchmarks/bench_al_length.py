"""#23: does length-aware acquisition fix the length bias, on a test where the longer answer wins less often?

    nice -n 10 python benchmarks/bench_al_length.py --json /work/bench/al_length.json   # the documented run
    nice -n 10 python benchmarks/bench_al_length.py --seeds 0 --rounds 2 --strategies random length_aware

Pool: the two shared HH-RLHF helpful files (``hh-rlhf-helpful-base-test`` and
``hh-rlhf-helpful-rejection-sampled-test``, read from ``../shared/data`` or
``$PREFLOOP_SHARED_DATA``; degenerate rows skipped, duplicates dropped) minus the test pairs.
Test: ``--test-size`` pairs drawn from the same files by stratified sampling (split seed 0,
the same for every seed) so that the chosen response is the longer one in the *reversed*
share of the decisive, not near-equal pairs (the files: ~58 % chosen longer → the test:
~42 %); near-equal pairs (``prefloop.model.length_groups``) keep their natural share. A model
that learned "longer wins" from the pool pays for it on this test.

Every seed starts from ``--seed-size`` random labels and adds ``--batch`` per round (100 →
1,000 labels by default); the simulated annotators answer with the human label. The model is
**heads mode with linear heads** (frozen MiniLM features, K = 5) for speed on a 2-core CPU,
not the loop's default adapted mode (``prefloop simulate`` now defaults to that one).
Reported per strategy: AULC (mean over label counts) of overall accuracy and of worst-group
accuracy, with 95 % intervals from resampling seeds and paired differences against random,
and the final accuracies (overall, worst group, each group, reward–length r).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prefloop.data.ingest import read_records
from prefloop.loop.simulate import run_simulation
from prefloop.loop.simulate_report import curve_matrix
from prefloop.model import ModelConfig
from prefloop.model.length_groups import assign_groups
from prefloop.types import Choice, PairRecord

SHARED = Path(os.environ.get("PREFLOOP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
FILES = ("hh-rlhf-helpful-base-test.jsonl.gz", "hh-rlhf-helpful-rejection-sampled-test.jsonl.gz")
STRATEGIES = ["random", "noise_aware", "bald", "length_aware:noise_aware"]


def decisive_records(records: Sequence[PairRecord]) -> list[PairRecord]:
    """Labelled a-or-b pairs with two different responses, each pair once (as ``simulate`` keeps them)."""
    seen: set[str] = set()
    kept = []
    for r in records:
        c = r.canonical()
        if c.label not in (Choice.A, Choice.B) or c.hash_a == c.hash_b or c.key in seen:
            continue
        seen.add(c.key)
        kept.append(r)
    return kept


def groups_of(records: Sequence[PairRecord]) -> np.ndarray:
    y = np.array([1.0 if r.label is Choice.A else 0.0 for r in records])
    len_a = np.array([len(r.response_a) for r in records], dtype=np.float64)
    len_b = np.array([len(r.response_b) for r in records], dtype=np.float64)
    return assign_groups(y, len_a, len_b)


def reversed_split(
    records: Sequence[PairRecord], test_size: int, seed: int = 0
) -> tuple[list[PairRecord], list[PairRecord], dict[str, Any]]:
    """(pool, test, facts): a test whose chosen-longer share (of the length-decided pairs) is 1 − the data's."""
    group = groups_of(records)
    rng = np.random.default_rng(seed)
    idx = {g: rng.permutation(np.flatnonzero(group == g)) for g in ("chosen_longer", "chosen_shorter", "near_equal")}
    n_cl, n_cs = len(idx["chosen_longer"]), len(idx["chosen_shorter"])
    longer_share = n_cl / (n_cl + n_cs)
    n_near = round(test_size * len(idx["near_equal"]) / len(records))
    decided = test_size - n_near
    want = {
        "chosen_longer": round(decided * (1.0 - longer_share)),
        "chosen_shorter": decided - round(decided * (1.0 - longer_share)),
        "near_equal": n_near,
    }
    test_idx = np.sort(np.concatenate([idx[g][: want[g]] for g in want]))
    is_test = np.zeros(len(records), dtype=bool)
    is_test[test_idx] = True
    pool = [r for r, t in zip(records, is_test, strict=True) if not t]
    test = [r for r, t in zip(records, is_test, strict=True) if t]
    pool_groups = groups_of(pool)
    facts = {
        "pairs": len(records),
        "data_chosen_longer_share": longer_share,
        "test": want,
        "test_chosen_longer_share": want["chosen_longer"] / decided,
        "pool": len(pool),
        "pool_chosen_longer_share": float(
            (pool_groups == "chosen_longer").sum() / np.isin(pool_groups, ["chosen_longer", "chosen_shorter"]).sum()
        ),
    }
    return pool, test, facts


def _ci(values: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> list[float] | None:
    if len(values) < 2:
        return None
    boots = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    return [float(v) for v in np.quantile(boots, [0.025, 0.975])]


def summarise(curves: list[dict[str, Any]], baseline: str = "random") -> list[dict[str, Any]]:
    """Per strategy: AULC and final value of each metric, with seed intervals and paired differences."""
    rng = np.random.default_rng(0)
    rows = []
    metrics = [m for m in ("accuracy", "worst_group_accuracy") if all(r.get(m) is not None for r in curves)]
    base = {m: curve_matrix(curves, baseline, m) for m in metrics}
    for name in dict.fromkeys(r["strategy"] for r in curves):
        row: dict[str, Any] = {"strategy": name}
        for m in metrics:
            grid, values, seeds = curve_matrix(curves, name, m)
            b_grid, b_values, b_seeds = base[m]
            aulc, final = np.nanmean(values, axis=1), values[:, -1]
            row[f"aulc_{m}"], row[f"aulc_{m}_ci"] = float(aulc.mean()), _ci(aulc, rng)
            row[f"final_{m}"], row[f"final_{m}_ci"] = float(final.mean()), _ci(final, rng)
            common = [s for s in seeds if s in b_seeds]
            if grid.tolist() == b_grid.tolist() and common:
                a = values[[seeds.index(s) for s in common]]
                b = b_values[[b_seeds.index(s) for s in common]]
                d_aulc, d_final = np.nanmean(a, axis=1) - np.nanmean(b, axis=1), a[:, -1] - b[:, -1]
                row[f"aulc_{m}_diff"], row[f"aulc_{m}_diff_ci"] = float(d_aulc.mean()), _ci(d_aulc, rng)
                row[f"final_{m}_diff"], row[f"final_{m}_diff_ci"] = float(d_final.mean()), _ci(d_final, rng)
        last = max(int(r["n_labels"]) for r in curves if r["strategy"] == name)
        finals = [r for r in curves if r["strategy"] == name and int(r["n_labels"]) == last]
        row["final_labels"] = last
        for key in ("chosen_longer_accuracy", "chosen_shorter_accuracy", "near_equal_accuracy", "length_corr"):
            vals = [r.get(key) for r in finals if r.get(key) is not None]
            row[f"final_{key}"] = float(np.mean(vals)) if vals else None
        row["worst_groups"] = sorted({str(r.get("worst_group")) for r in finals})
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    def f(v: Any) -> str:
        return "–" if v is None else f"{v:.3f}"

    def ci(v: list[float] | None, scale: float = 1.0, spec: str = ".3f") -> str:
        return "" if v is None else f" [{scale * v[0]:{spec}}, {scale * v[1]:{spec}}]"

    def pts(row: dict[str, Any], key: str) -> str:
        if row.get(key) is None:
            return "–"
        return f"{100 * row[key]:+.1f}{ci(row.get(key + '_ci'), 100, '+.1f')}"

    lines = [
        "| strategy | AULC acc [95% CI] | − random (pts) | AULC worst-group [95% CI] | − random (pts) "
        "| final acc | final worst-group | − random (pts) | chosen longer / shorter / near-equal | r_len |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        groups = " / ".join(f(r[f"final_{g}_accuracy"]) for g in ("chosen_longer", "chosen_shorter", "near_equal"))
        cells = [
            r["strategy"],
            f(r.get("aulc_accuracy")) + ci(r.get("aulc_accuracy_ci")),
            pts(r, "aulc_accuracy_diff"),
            f(r.get("aulc_worst_group_accuracy")) + ci(r.get("aulc_worst_group_accuracy_ci")),
            pts(r, "aulc_worst_group_accuracy_diff"),
            f(r.get("final_accuracy")),
            f(r.get("final_worst_group_accuracy")),
            pts(r, "final_worst_group_accuracy_diff"),
            groups,
            f(r["final_length_corr"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _aggregate(paths: Sequence[Path], out: Path | None) -> None:
    """Curves of several runs (e.g. one process per seed) as one table."""
    runs = [json.loads(p.read_text()) for p in paths]
    curves = [row for run in runs for row in run["curves"]]
    rows = summarise(curves)
    print(markdown(rows))
    if out:
        seeds = sorted({int(r["seed"]) for r in curves})
        payload = {"runs": [str(p) for p in paths], "seeds": seeds, "facts": runs[0]["facts"], "args": runs[0]["args"]}
        payload |= {"seconds": sum(r["seconds"] for r in runs), "summary": rows, "markdown": markdown(rows)}
        out.write_text(json.dumps(payload | {"curves": curves}, indent=1, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED, help="folder of the shared files ($PREFLOOP_SHARED_DATA)")
    ap.add_argument("--test-size", type=int, default=1000)
    ap.add_argument("--pool-size", type=int, default=None, help="a random sample of the pool (default: all of it)")
    ap.add_argument("--strategies", nargs="+", default=STRATEGIES)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--seed-size", type=int, default=100)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--head", choices=["linear", "mlp"], default="linear")
    ap.add_argument("--max-length", type=int, default=None, help="backbone tokens per text (default: [model]'s)")
    ap.add_argument("--debias", choices=["none", "length"], default="none", help="the model's length debiasing")
    ap.add_argument("--debias-method", default=None, help="[model] debias_method (default: the shipped default)")
    ap.add_argument("--out", type=Path, default=Path("runs/al_length"), help="simulate's curves, plot, summary")
    ap.add_argument("--json", type=Path, default=None, help="write the facts, summary and curves here")
    ap.add_argument("--aggregate", type=Path, nargs="+", default=None, help="only combine these --json files")
    args = ap.parse_args()
    if args.aggregate:
        _aggregate(args.aggregate, args.json)
        return
    records: list[PairRecord] = []
    for name in FILES:
        read = read_records(str(args.data / name))
        print(f"{name}: {len(read.records)} pairs ({read.degenerate} degenerate rows skipped)", flush=True)
        records.extend(read.records)
    pool, test, facts = reversed_split(decisive_records(records), args.test_size)
    if args.pool_size is not None and args.pool_size < len(pool):
        keep = np.sort(np.random.default_rng(1).choice(len(pool), size=args.pool_size, replace=False))
        pool = [pool[i] for i in keep]
        groups = groups_of(pool)
        decided = np.isin(groups, ["chosen_longer", "chosen_shorter"]).sum()
        facts |= {"pool": len(pool), "pool_chosen_longer_share": float((groups == "chosen_longer").sum() / decided)}
    print(json.dumps(facts), flush=True)
    t0 = time.perf_counter()
    model = ModelConfig(mode="heads", head=args.head, k=5, debias=args.debias)
    if args.debias_method is not None:
        model = dataclasses.replace(model, debias_method=args.debias_method)
    if args.max_length is not None:
        model = dataclasses.replace(model, max_length=args.max_length)
    result = run_simulation(
        pool,
        args.strategies,
        args.seeds,
        seed_size=args.seed_size,
        batch_size=args.batch,
        rounds=args.rounds,
        model_config=model,
        out_dir=args.out,
        test_pairs=test,
        progress=False,
    )
    seconds = time.perf_counter() - t0
    rows = summarise(result.curves)
    print(markdown(rows))
    print(f"{seconds:.0f} s; files: " + ", ".join(str(p) for p in result.paths.values()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"args": {k: str(v) for k, v in vars(args).items()}, "facts": facts, "seconds": seconds}
        payload |= {"summary": rows, "markdown": markdown(rows), "curves": result.curves}
        args.json.write_text(json.dumps(payload, indent=1, default=str))


if __name__ == "__main__":
    main()
