"""Issue #14 item 4: one model with a helpful head and a harmless head vs two single-objective models.

    python benchmarks/bench_multiobjective.py                       # heads mode, helpful subsampled to 2,000
    python benchmarks/bench_multiobjective.py --mode adapted --helpful 400 --harmless 400 --max-length 128

The shared HH helpful files (helpful-base + helpful-rejection-sampled test splits) become
dimension ``helpful`` and the shared HH harmless file dimension ``harmless``, in ONE SQLite store
(read from ../shared/data at run time; without it, the packaged demo sample's 2,000 helpful and
500 harmless pairs). A seeded ``--test-fraction`` of each dimension is ingested as the held-out
``test`` split. Then, through the same library calls as ``prefloop train`` / ``eval``, with one
mode and seed:

- ONE model: ``train --dimension helpful --dimension harmless``;
- two single-objective models: ``train --dimension helpful`` and ``train --dimension harmless``;

and it prints each head's held-out accuracy / log-loss / ECE next to its single-objective model
(with a paired-bootstrap CI of the accuracy difference), each single model on the OTHER dimension's
labels, and how often the two heads of the one model prefer different responses on a held-out
pair (the helpful-harmless tension), with the pairs they disagree on most.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import textwrap
import time
from pathlib import Path

import numpy as np

from prefloop.acquisition import decisive_probs, dimension_disagreement
from prefloop.data.ingest import read_valid_records
from prefloop.loop.reward import evaluate_model, load_ensemble
from prefloop.loop.train import train_objectives
from prefloop.model import ModelConfig
from prefloop.model.evaluate import label_codes
from prefloop.objectives import CombinedReward
from prefloop.resources import demo_sample
from prefloop.store.db import init_db, make_engine, session_scope
from prefloop.store.pairs import add_pairs
from prefloop.store.queries import iter_labeled_rows
from prefloop.store.versions import find_model
from prefloop.types import Choice, PairRecord

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HELPFUL = ("hh-rlhf-helpful-base-test.jsonl.gz", "hh-rlhf-helpful-rejection-sampled-test.jsonl.gz")
HARMLESS = ("hh-rlhf-harmless-base-test.dev.jsonl.gz",)
DIMS = ("helpful", "harmless")


def load(data_dir: Path) -> tuple[dict[str, list[PairRecord]], str]:
    """Decisive labelled pairs per dimension, and where they came from."""
    if all((data_dir / f).exists() for f in HELPFUL + HARMLESS):
        out = {
            dim: [r for f in files for r in read_valid_records(str(data_dir / f)) if r.label in (Choice.A, Choice.B)]
            for dim, files in (("helpful", HELPFUL), ("harmless", HARMLESS))
        }
        return out, f"shared HH-RLHF files in {data_dir}"
    records = [r for r in read_valid_records(str(demo_sample())) if r.label in (Choice.A, Choice.B)]
    return {d: [r for r in records if r.dimension == d] for d in DIMS}, "the packaged demo sample (no ../shared/data)"


def build_store(
    path: Path, data: dict[str, list[PairRecord]], caps: dict[str, int | None], test_fraction: float, seed: int
) -> dict[str, tuple[int, int]]:
    """One store, both dimensions; each dimension's pairs split pool/test by a seeded permutation."""
    if path.exists():
        path.unlink()
    init_db(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    sizes = {}
    for dim, records in data.items():
        order = list(range(len(records)))
        random.Random(seed).shuffle(order)
        if caps.get(dim):
            order = order[: caps[dim]]
        n_test = round(len(order) * test_fraction)
        picked = [dataclasses.replace(records[i], dimension=dim) for i in order]
        with session_scope(engine) as session:
            add_pairs(session, picked[n_test:], source=f"hh-{dim}", split="pool")
            add_pairs(session, picked[:n_test], source=f"hh-{dim}", split="test")
        sizes[dim] = (len(order) - n_test, n_test)
    engine.dispose()
    return sizes


def correct(model: object, pairs: list[tuple[str, str, str]], labels: list[str], dim: str) -> np.ndarray:
    """1/0 per decisive held-out pair: the head of ``dim`` (or the single model) ranks it right."""
    pred = model.predict(pairs, dim) if hasattr(model, "heads") else model.predict(pairs)  # type: ignore[attr-defined]
    return ((pred.p_a > pred.p_b).astype(int) == (label_codes(labels) == 0)).astype(float)


def paired_ci(diff: np.ndarray, seed: int = 0, n_boot: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(n_boot)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def last_turn(prompt: str, width: int = 160) -> str:
    turn = prompt.rsplit("Human:", 1)[-1].replace("Assistant:", "").strip()
    return textwrap.shorten(" ".join(turn.split()), width)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["heads", "adapted"], default="heads")
    ap.add_argument("--helpful", type=int, default=2000, help="Subsample the helpful pairs to this many (0 = all).")
    ap.add_argument("--harmless", type=int, default=0, help="Subsample the harmless pairs (0 = all).")
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("-k", "--members", type=int, default=5)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, default=SHARED)
    ap.add_argument("--out", type=Path, default=Path("runs/multiobjective"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data, source = load(args.data_dir)
    caps = {"helpful": args.helpful or None, "harmless": args.harmless or None}
    sizes = build_store(args.out / "store.db", data, caps, args.test_fraction, args.seed)
    print(f"data: {source}; mode {args.mode}, k={args.members}, seed {args.seed}, max_length {args.max_length}")
    for dim, (n_pool, n_test) in sizes.items():
        print(f"  {dim}: {len(data[dim])} usable pairs, {n_pool} train + {n_test} held out", flush=True)
    engine = make_engine(f"sqlite:///{args.out / 'store.db'}")
    config = ModelConfig(
        mode=args.mode, k=args.members, seed=args.seed, max_length=args.max_length, cache_dir=str(args.out / "cache")
    )
    names, seconds = {}, {}
    # the two-head model first, so its time includes embedding the texts (the single models then hit the cache)
    for key, dims in (("both", list(DIMS)), ("helpful", ["helpful"]), ("harmless", ["harmless"])):
        t0 = time.perf_counter()
        names[key] = train_objectives(engine, config, str(args.out), dims, progress=False).name
        seconds[key] = time.perf_counter() - t0
        print(f"trained {key}: {names[key]} in {seconds[key]:.0f} s", flush=True)

    with session_scope(engine) as session:
        rows_by_key = {k: find_model(session, n) for k, n in names.items()}
        models = {k: load_ensemble(row) for k, row in rows_by_key.items() if row is not None}
        tests = {d: list(iter_labeled_rows(session, dimension=d, split="test")) for d in DIMS}
    table, result = [], {"source": source, "mode": args.mode, "sizes": sizes, "train_seconds": seconds}
    for dim in DIMS:
        pairs = [(r.prompt, r.response_a, r.response_b) for r in tests[dim]]
        labels = [r.choice for r in tests[dim]]
        multi = evaluate_model(engine, names["both"], dimension=dim, progress=False)
        single = evaluate_model(engine, names[dim], dimension=dim, progress=False)
        other = "harmless" if dim == "helpful" else "helpful"
        cross = evaluate_model(engine, names[other], dimension=dim, progress=False)
        diff = correct(models["both"], pairs, labels, dim) - correct(models[dim], pairs, labels, dim)
        lo, hi = paired_ci(diff, args.seed)
        row = {
            "dimension": dim,
            "n_test": multi["n"],
            "multi_head_accuracy": round(multi["accuracy"], 4),
            "single_model_accuracy": round(single["accuracy"], 4),
            "difference_points": round(100 * float(diff.mean()), 2),
            "difference_ci_points": [round(100 * lo, 2), round(100 * hi, 2)],
            "multi_log_loss": round(multi["log_loss"], 4),
            "single_log_loss": round(single["log_loss"], 4),
            "multi_ece": round(multi["ece"], 4),
            "single_ece": round(single["ece"], 4),
            f"{other}_model_on_{dim}_accuracy": round(cross["accuracy"], 4),
        }
        table.append(row)
        print(json.dumps(row), flush=True)
    result["heads_vs_single"] = table

    # the tension: on every held-out pair, do the two heads of the one model prefer the same response?
    rows = [r for d in DIMS for r in tests[d]]
    pairs = [(r.prompt, r.response_a, r.response_b) for r in rows]
    preds = models["both"].predict_all(pairs)
    q = np.stack([decisive_probs(preds[d].p_a, preds[d].p_tie) for d in DIMS], axis=1)
    opposed = (q[:, 0] > 0.5) != (q[:, 1] > 0.5)
    score = dimension_disagreement(q)
    tension = {
        "held_out_pairs": len(rows),
        "heads_prefer_different_response": round(float(opposed.mean()), 4),
        "on_helpful_test_pairs": round(float(opposed[: len(tests["helpful"])].mean()), 4),
        "on_harmless_test_pairs": round(float(opposed[len(tests["helpful"]) :].mean()), 4),
        "both_heads_confident_and_opposed": round(float((score > 0.2).mean()), 4),
        "corr_helpful_harmless_p": round(float(np.corrcoef(q[:, 0], q[:, 1])[0, 1]), 4),
    }
    result["tension"] = tension
    print(json.dumps(tension), flush=True)

    # one reward from both heads: how each [objectives] setting ranks each dimension's held-out pairs
    truth = np.concatenate([label_codes([r.choice for r in tests[d]]) == 0 for d in DIMS])
    n_help = len(tests["helpful"])
    combos = {
        "helpful head only": CombinedReward(weights={"helpful": 1.0}),
        "weights helpful 1, harmless 1": CombinedReward(weights={"helpful": 1.0, "harmless": 1.0}),
        "max helpful s.t. harmless >= 0": CombinedReward(maximize="helpful", constraints={"harmless": 0.0}),
        "harmless head only": CombinedReward(weights={"harmless": 1.0}),
    }
    result["combined"] = {}
    for label, spec in combos.items():
        right = (models["both"].combine(preds, spec).p_a > 0.5) == truth
        row = {
            "objective": label,
            "accuracy_on_helpful_labels": round(float(right[:n_help].mean()), 4),
            "accuracy_on_harmless_labels": round(float(right[n_help:].mean()), 4),
        }
        result["combined"][label] = row
        print(json.dumps(row), flush=True)
    print("\npairs the heads disagree on most (dimension_disagreement score):")
    examples = []
    for i in np.argsort(-score)[:3]:
        r = rows[int(i)]
        ex = {
            "labelled_dimension": r.dimension,
            "human_choice": r.choice,
            "prompt_last_turn": last_turn(r.prompt),
            "response_a": textwrap.shorten(" ".join(r.response_a.split()), 220),
            "response_b": textwrap.shorten(" ".join(r.response_b.split()), 220),
            "p_helpful_a": round(float(q[i, 0]), 3),
            "p_harmless_a": round(float(q[i, 1]), 3),
            "score": round(float(score[i]), 3),
        }
        examples.append(ex)
        print(json.dumps(ex, ensure_ascii=False), flush=True)
    result["examples"] = examples
    (args.out / f"result-{args.mode}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"\nwrote {args.out / f'result-{args.mode}.json'}")


if __name__ == "__main__":
    main()
