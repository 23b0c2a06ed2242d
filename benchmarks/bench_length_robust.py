"""Issue #23 item 5: length-robust training on splits whose length prior is reversed.

    python benchmarks/bench_length_robust.py                                   # adapted, none vs project, 3 seeds
    python benchmarks/bench_length_robust.py --settings helpful --max-train 1500
    python benchmarks/bench_length_robust.py --modes heads --methods none project odin balanced
    python benchmarks/bench_length_robust.py --modes trl                       # the TRL RewardTrainer reference row
    python benchmarks/bench_length_robust.py --json out.jsonl                  # append every row (resumable)
    python benchmarks/bench_length_robust.py --table-from out.jsonl            # the table of saved rows; no run

Settings, built from ../shared/data at run time (PREFLOOP_SHARED_DATA overrides the folder;
never copied into the repository) by ``benchmarks/length_splits.py``:

- ``harmless``: the 1,170 HH harmless pairs (the preferred response is the longer one in 44.6 %).
  The test set is a stratified sample in which the preferred response is the longer one in
  55.4 % of pairs (the prior mirrored); the model trains on every other pair.
- ``helpful``: the two HH helpful files (5,069 usable pairs, preferred longer in 58 %); the test
  set (1,000 pairs) has the preferred response longer in 42 %; training pairs are drawn from
  the rest (``--max-train`` caps them for CPU time).
- ``harmless-iid``: the same sizes as ``harmless`` but a random split: the in-distribution
  cost of a method.

Every row reports overall accuracy, accuracy per length group (chosen longer / chosen shorter /
near-equal, ``prefloop.model.length_groups``) with the worst group, reward-length Pearson r
over all test responses, log-loss and ECE. Methods are ``[model] debias`` settings: ``none``
(plain Bradley-Terry) or ``debias = "length"`` with that ``debias_method``. In adapted mode the
methods of one seed share the fine-tuned backbone (every method trains the backbone on the
plain likelihood, so it is trained once, by the first method, and reused by a heads-only
retrain from it: what ``prefloop train`` would give with the same seed). A method named
``<method>:residual`` runs it with ``debias_residual = true`` (the held-out length slope removed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from length_splits import SETTINGS, build_setting

_BASE_METHODS = ("none", "project", "project_balanced", "odin", "conditioned", "balanced")
# "<method>:residual" = that method with debias_residual = true (the held-out length slope removed)
METHODS = _BASE_METHODS + tuple(f"{m}:residual" for m in _BASE_METHODS[1:])
MODES = ("adapted", "heads", "finetune", "trl", "multi-heads", "multi-adapted")


def _metrics(
    p_a: np.ndarray, p_b: np.ndarray, p_tie: np.ndarray | None, rewards: tuple[np.ndarray, np.ndarray], test: list[Any]
) -> dict[str, Any]:
    """``prefloop eval``'s metrics (accuracy, log-loss, ECE, reward-length r) and the length groups."""
    from prefloop.model.evaluate import evaluate_predictions, pair_lengths
    from prefloop.model.length_groups import group_metrics

    labels = [r.label.value for r in test]
    len_a, len_b = pair_lengths([(r.prompt, r.response_a, r.response_b) for r in test])
    m = evaluate_predictions(p_a, labels, p_tie, p_b, rewards[0], rewards[1], len_a, len_b)
    y = np.array([1.0 if v == "a" else 0.0 for v in labels])
    q = p_a / np.clip(p_a + p_b, 1e-12, None)
    g = group_metrics(q, y, len_a, len_b, n_boot=1000, seed=0)
    out: dict[str, Any] = {
        "accuracy": m["accuracy"],
        "log_loss": m["log_loss"],
        "ece": m["ece"],
        "r_len": m["length_corr"],
        "worst_group": g["worst_group"],
        "worst_group_accuracy": g["worst_group_accuracy"],
        "worst_ci": [g["worst_group_ci_low"], g["worst_group_ci_high"]],
    }
    for name, grp in g["groups"].items():
        out[f"acc_{name}"] = grp["accuracy"]
        out[f"n_{name}"] = grp["n"]
    return out


def _config(mode: str, method: str, seed: int, args: argparse.Namespace) -> Any:
    from prefloop.model import ModelConfig

    name, _, variant = method.partition(":")
    extra: dict[str, Any] = {"debias": "none"} if name == "none" else {"debias": "length", "debias_method": name}
    if variant == "residual":
        extra["debias_residual"] = True
    if args.k is not None:
        extra["k"] = args.k
    if args.epochs is not None:
        extra["epochs"] = args.epochs
    if getattr(args, "backbone", None) is not None:  # other benchmarks pass a Namespace without it
        extra |= {"backbone": args.backbone, "gguf_file": getattr(args, "gguf_file", None)}
    return ModelConfig(mode=mode, seed=seed, cache_dir=args.cache_dir, **extra)


def _run_prefloop(
    mode: str,
    method: str,
    train: list[Any],
    test: list[Any],
    seed: int,
    args: argparse.Namespace,
    shared: dict[str, Any],
) -> dict[str, Any]:
    from prefloop.model import PreferenceExample, RewardEnsemble

    cfg = _config(mode, method, seed, args)
    examples = [PreferenceExample(r.prompt, r.response_a, r.response_b, r.label) for r in train]
    t0 = time.perf_counter()
    parent = shared.get("backbone_model") if mode == "adapted" else None
    ens, report = RewardEnsemble.train(examples, cfg, parent=parent, progress=False)
    if mode == "adapted" and parent is None:
        shared["backbone_model"] = ens
    train_s = time.perf_counter() - t0
    pred = ens.predict([(r.prompt, r.response_a, r.response_b) for r in test])
    row = _metrics(pred.p_a, pred.p_b, pred.p_tie, (pred.reward_a, pred.reward_b), test)
    row.update(
        temperature=ens.temperature,
        length_slope=ens.length_slope,
        train_s=round(train_s, 1),
        warnings=report.get("warnings", []),
        backbone_reused=parent is not None,
    )
    return row


def variant_options(ap: argparse.ArgumentParser) -> None:
    """The options of a benchmark that runs one patched variant of a shipped method (bench_debias_combos,
    bench_group_dro): --settings, --seeds, --max-train, --cache-dir, --json."""
    ap.add_argument("--settings", nargs="+", choices=SETTINGS, default=["harmless", "harmless-iid"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--max-train", type=int, default=1500, help="cap on helpful training pairs")
    ap.add_argument("--cache-dir", default=None, help="embedding cache (default: ~/.cache/prefloop/bench)")
    ap.add_argument("--json", type=Path, default=None, help="append every row here as one JSON line")


def run_variant(args: argparse.Namespace, mode: str, method: str, label: str) -> None:
    """``method`` in ``mode`` as the calling benchmark has patched it, per seed and setting: one row each,
    named ``label``, printed and appended to ``--json`` (``--table-from`` reads them)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = args.cache_dir or str(Path.home() / ".cache" / "prefloop" / "bench")
    opts = argparse.Namespace(k=None, epochs=None, cache_dir=cache)
    for seed in args.seeds:
        for setting in args.settings:
            max_train = args.max_train if setting == "helpful" else 0
            train, test, info = build_setting(setting, seed, max_train)
            print(f"[seed {seed}] {setting}: {info}", flush=True)
            result = _run_prefloop(mode, method, train, test, seed, opts, {})
            row = {"setting": setting, "seed": seed, "max_train": max_train, "mode": mode, "method": label}
            row |= {"n_train": len(train), "n_test": len(test), **result}
            print(json.dumps(row, default=str), flush=True)
            if args.json:
                with args.json.open("a") as handle:
                    handle.write(json.dumps(row, default=str) + "\n")


def _run_multi(
    mode: str, method: str, data: dict[str, tuple[list[Any], list[Any]]], seed: int, args: argparse.Namespace
) -> Iterator[dict[str, Any]]:
    """One model, one head ensemble per setting (``train --dimension harmless --dimension helpful``)."""
    from prefloop.model import PreferenceExample
    from prefloop.model.objectives import MultiObjectiveModel

    cfg = _config(mode, method, seed, args)
    examples = {
        name: [PreferenceExample(r.prompt, r.response_a, r.response_b, r.label) for r in train]
        for name, (train, _test) in data.items()
    }
    t0 = time.perf_counter()
    model, _report = MultiObjectiveModel.train(examples, cfg, progress=False)
    train_s = time.perf_counter() - t0
    for name, (train, test) in data.items():
        pred = model.predict([(r.prompt, r.response_a, r.response_b) for r in test], dimension=name)
        row = _metrics(pred.p_a, pred.p_b, pred.p_tie, (pred.reward_a, pred.reward_b), test)
        row.update(temperature=model.head(name).temperature, train_s=round(train_s, 1), warnings=[])
        yield {
            "setting": name,
            "mode": f"multi-{cfg.mode}",
            "method": method,
            "n_train": len(train),
            "n_test": len(test),
            **row,
        }


def _run_trl(train: list[Any], test: list[Any], seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """TRL RewardTrainer, 2 epochs on the same backbone and pairs (the recipe the issue quotes)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from prefloop.model import default_backbone

    torch.manual_seed(seed)
    backbone = default_backbone()
    tok = AutoTokenizer.from_pretrained(backbone)
    tok.truncation_side = "left"
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1)

    def side(r: Any, preferred: bool) -> str:
        first = r.label.value == "a"
        return r.prompt + (r.response_a if first == preferred else r.response_b)

    def ids(texts: list[str]) -> list[list[int]]:
        return tok(texts, truncation=True, max_length=512)["input_ids"]

    ds = Dataset.from_dict(
        {"chosen_ids": ids([side(r, True) for r in train]), "rejected_ids": ids([side(r, False) for r in train])}
    )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        conf = RewardConfig(
            output_dir=out,
            per_device_train_batch_size=16,
            num_train_epochs=2,
            learning_rate=5e-5,
            max_length=512,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            logging_steps=50,
            disable_dropout=True,
            seed=seed,
            dataloader_num_workers=0,
        )
        RewardTrainer(model=model, args=conf, train_dataset=ds, processing_class=tok).train()
    train_s = time.perf_counter() - t0
    model.eval()
    ra, rb = [], []
    with torch.no_grad():
        for s in range(0, len(test), 32):
            chunk = test[s : s + 32]
            for texts, out_list in (
                ([r.prompt + r.response_a for r in chunk], ra),
                ([r.prompt + r.response_b for r in chunk], rb),
            ):
                enc = tok(texts, truncation=True, max_length=512, padding=True, return_tensors="pt")
                out_list.extend(model(**enc).logits.squeeze(-1).float().tolist())
    a, b = np.array(ra), np.array(rb)
    q = 1 / (1 + np.exp(-(a - b)))
    row = _metrics(q, 1 - q, None, (a, b), test)
    row.update(temperature=None, train_s=round(train_s, 1), warnings=[], backbone_reused=False)
    return row


def _run_methods(
    mode: str, methods: list[str], train: list[Any], test: list[Any], seed: int, args: argparse.Namespace
) -> Iterator[dict[str, Any]]:
    """One row per method of ``mode`` trained on ``train`` (adapted methods share one backbone)."""
    shared: dict[str, Any] = {}
    for method in methods:
        if mode == "trl":
            row = _run_trl(train, test, seed, args)
        else:
            row = _run_prefloop(mode, method, train, test, seed, args, shared)
        yield {"mode": mode, "method": method, "n_train": len(train), "n_test": len(test), **row}


def _fmt(values: list[float], digits: int = 3) -> str:
    v = np.array([x for x in values if x is not None], dtype=float)
    if not len(v):
        return "—"
    return f"{v.mean():.{digits}f}" + (f" ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else "")


def table(rows: list[dict[str, Any]]) -> str:
    """Mean ± sd over seeds per setting, mode and method."""
    lines = [
        "| setting | mode | method | labels | seeds | accuracy | worst group | acc chosen longer | acc chosen shorter "
        "| acc near-equal | r_len | log-loss | ECE | T | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}
    full: dict[str, int] = {}  # each setting's whole training set: "all" in the labels column
    for r in rows:
        full[r["setting"]] = max(full.get(r["setting"], 0), r["n_train"])
    for r in rows:
        part = r["n_train"] < full[r["setting"]] and r.get("max_train", 0) != r["n_train"]
        groups.setdefault((r["setting"], r["mode"], r["method"], r["n_train"] if part else -1), []).append(r)
    for (setting, mode, method, size), rs in sorted(groups.items()):
        cells = [
            _fmt([r.get(k) for r in rs])
            for k in (
                "accuracy",
                "worst_group_accuracy",
                "acc_chosen_longer",
                "acc_chosen_shorter",
                "acc_near_equal",
                "r_len",
                "log_loss",
                "ece",
            )
        ]
        temp = _fmt([r.get("temperature") for r in rs], 2)
        labels = "all" if size < 0 else str(size)
        lines.append(
            f"| {setting} | {mode} | {method} | {labels} | {len(rs)} | "
            + " | ".join(cells)
            + f" | {temp} | {np.mean([r['train_s'] for r in rs]):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", nargs="+", choices=SETTINGS, default=["harmless"])
    ap.add_argument("--modes", nargs="+", choices=MODES, default=["adapted"])
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=["none", "project"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--max-train", type=int, default=0, help="cap on training pairs (0 = all)")
    ap.add_argument(
        "--milestones",
        nargs="+",
        type=int,
        default=[],
        help="also train on the first N training pairs for each N (the model a milestone retrain gives)",
    )
    ap.add_argument("-k", type=int, default=None, help="ensemble size (default: ModelConfig's)")
    ap.add_argument("--epochs", type=int, default=None, help="fine-tune epochs (default: ModelConfig's)")
    ap.add_argument("--cache-dir", default=None, help="embedding cache (default: a temporary folder)")
    ap.add_argument("--backbone", default=None, help="[model] backbone: an HF id or folder (default: MiniLM)")
    ap.add_argument("--gguf-file", default=None, help="[model] gguf_file inside --backbone")
    ap.add_argument("--json", type=Path, default=None, help="append every row here as one JSON line")
    ap.add_argument("--table-from", type=Path, default=None, help="print the table of rows saved with --json; no run")
    args = ap.parse_args()
    if args.table_from:
        rows = [json.loads(line) for line in args.table_from.read_text().splitlines() if line.strip()]
        print(table(rows))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    done = set()
    if args.json and args.json.exists():
        for line in args.json.read_text().splitlines():
            r = json.loads(line)
            done.add((r["setting"], r["mode"], r["method"], r["seed"], r.get("max_train", 0), r["n_train"]))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        args.cache_dir = args.cache_dir or scratch
        for seed in args.seeds:
            multi = [m for m in args.modes if m.startswith("multi-")]
            if multi:  # one model for every setting: harmless and helpful as two dimensions
                data = {}
                for setting in ("harmless", "helpful"):
                    train, test, info = build_setting(setting, seed, args.max_train)
                    print(f"[seed {seed}] {setting}: {info}", flush=True)
                    data[setting] = (train, test)
                for mode in multi:
                    for method in args.methods:
                        if ("harmless", mode, method, seed, args.max_train, len(data["harmless"][0])) in done:
                            continue
                        for row in _run_multi(mode.removeprefix("multi-"), method, data, seed, args):
                            row = {"seed": seed, "max_train": args.max_train, **row}
                            print(json.dumps(row), flush=True)
                            rows.append(row)
                            if args.json:
                                with args.json.open("a") as fh:
                                    fh.write(json.dumps(row) + "\n")
            for setting in [] if multi and len(multi) == len(args.modes) else args.settings:
                train, test, info = build_setting(setting, seed, args.max_train)
                print(f"[seed {seed}] {setting}: {info}", flush=True)
                for n_labels in [*sorted(n for n in args.milestones if n < len(train)), len(train)]:
                    for mode in [m for m in args.modes if not m.startswith("multi-")]:
                        todo = [
                            m
                            for m in (["none"] if mode == "trl" else args.methods)
                            if (setting, mode, m, seed, args.max_train, n_labels) not in done
                        ]
                        for row in _run_methods(mode, todo, train[:n_labels], test, seed, args):
                            row = {"setting": setting, "seed": seed, "max_train": args.max_train, **row}
                            print(json.dumps(row), flush=True)
                            rows.append(row)
                            if args.json:
                                with args.json.open("a") as fh:
                                    fh.write(json.dumps(row) + "\n")
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
