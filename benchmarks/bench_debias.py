"""Issue #14 item 1: length debiasing, method × setting, on real HH pairs.

    python benchmarks/bench_debias.py                                  # heads mode, CPU, all methods
    python benchmarks/bench_debias.py --seeds 0 1 2                    # mean ± sd over seeds
    python benchmarks/bench_debias.py --mode adapted --device cuda     # the default mode, on a GPU
    python benchmarks/bench_debias.py --mode adapted --subset 40       # smoke test of a mode's path

Two settings, read from ../shared/data at run time (never copied into the repository):

(a) ``harmless``: the 1,170 HH harmless-base pairs split in halves by a seeded permutation;
    train on one half, score the other (chosen is the longer response in 44.6 % of pairs).
(b) ``flip``: train on HH helpful-base (2,352 usable pairs; chosen longer in 59.5 %), score a
    stratified subsample of HH helpful-rejection-sampled in which the chosen response is the
    longer one in ``--flip-share`` (40 %) of the pairs: the length prior the model could learn
    points the wrong way more often than in training.

Without ../shared/data the packaged demo sample (``prefloop.resources.demo_sample()``: 500
harmless, 1,000 helpful-base, 1,000 rejection-sampled pairs) stands in, and the output says so.

Each method (none = no debiasing, odin, conditioned, balanced) trains ``--mode`` with its
defaults plus ``debias = "length"``; the table gives held-out accuracy, log-loss, ECE, the
Pearson r between reward and response length in characters over every test response, and
the accuracy on pairs where the preferred response is the longer / the shorter one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {
    "harmless": "hh-rlhf-harmless-base-test.dev.jsonl.gz",
    "helpful-base": "hh-rlhf-helpful-base-test.jsonl.gz",
    "helpful-rejection-sampled": "hh-rlhf-helpful-rejection-sampled-test.jsonl.gz",
}
DEMO_SUBSETS = {"harmless": "harmless-base", "helpful-base": "helpful-base", "helpful-rejection-sampled": None}
METHODS = ("none", "odin", "conditioned", "balanced")


def _sources(data_dir: Path, scratch: Path) -> tuple[dict[str, str], str]:
    """Name → file of each source, and where they came from (the shared files or the demo sample)."""
    if all((data_dir / f).exists() for f in FILES.values()):
        return {k: str(data_dir / f) for k, f in FILES.items()}, f"shared files in {data_dir}"
    from prefloop.resources import demo_sample

    by_subset: dict[str, list[str]] = {}
    with gzip.open(demo_sample(), "rt", encoding="utf-8") as fh:
        for line in fh:
            by_subset.setdefault(json.loads(line)["subset"], []).append(line)
    out = {}
    for name in FILES:
        subset = DEMO_SUBSETS[name] or name
        path = scratch / f"{name}.jsonl"
        path.write_text("".join(by_subset[subset]), encoding="utf-8")
        out[name] = str(path)
    return out, "the packaged demo sample (../shared/data missing)"


def _decisive(path: str) -> list[Any]:
    from prefloop.data.ingest import read_records
    from prefloop.types import Choice

    return [r for r in read_records(path).records if r.label in (Choice.A, Choice.B)]


def _chosen_longer(r: Any) -> int:
    """+1 when the preferred response is the longer one, −1 shorter, 0 equal length."""
    win, lose = (r.response_a, r.response_b) if r.label.value == "a" else (r.response_b, r.response_a)
    return int(np.sign(len(win) - len(lose)))


def _flipped(records: list[Any], share: float, seed: int) -> list[Any]:
    """Every chosen-shorter pair plus chosen-longer pairs so that they make ``share`` of the set."""
    longer = [r for r in records if _chosen_longer(r) > 0]
    shorter = [r for r in records if _chosen_longer(r) < 0]
    n_long = min(len(longer), round(share / (1 - share) * len(shorter)))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(longer), size=n_long, replace=False)
    chosen = shorter + [longer[i] for i in sorted(pick)]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def _settings(src: dict[str, str], args: argparse.Namespace, seed: int) -> dict[str, tuple[list[Any], list[Any]]]:
    out = {}
    if "harmless" in args.settings:
        recs = _decisive(src["harmless"])
        perm = np.random.default_rng(seed).permutation(len(recs))
        half = len(recs) // 2
        out["harmless"] = ([recs[i] for i in perm[:half]], [recs[i] for i in perm[half:]])
    if "flip" in args.settings:
        train = _decisive(src["helpful-base"])
        test = _flipped(_decisive(src["helpful-rejection-sampled"]), args.flip_share, seed)
        out["flip"] = (train, test)
    if args.subset:
        n = args.subset
        out = {k: (tr[:n], te[:n]) for k, (tr, te) in out.items()}
    return out


def _run(method: str, train: list[Any], test: list[Any], args: argparse.Namespace, seed: int) -> dict[str, Any]:
    from prefloop.model import ModelConfig, PreferenceExample, RewardEnsemble, evaluate_prediction

    extra: dict[str, Any] = {} if method == "none" else {"debias": "length", "debias_method": method}
    if args.k is not None:
        extra["k"] = args.k
    if args.epochs is not None:
        extra["epochs"] = args.epochs
    if args.head is not None:
        extra["head"] = args.head
    if args.debias_weight is not None and method == "odin":
        extra["debias_weight"] = args.debias_weight
    cfg = ModelConfig(mode=args.mode, seed=seed, **extra)
    examples = [PreferenceExample(r.prompt, r.response_a, r.response_b, r.label) for r in train]
    t0 = time.perf_counter()
    ens, _report = RewardEnsemble.train(examples, cfg, progress=False)
    train_s = time.perf_counter() - t0
    texts = [(r.prompt, r.response_a, r.response_b) for r in test]
    pred = ens.predict(texts)
    m, len_a, len_b = evaluate_prediction(pred, texts, [r.label.value for r in test])
    lengths = np.concatenate([len_a, len_b])
    members = np.concatenate([pred.reward_a_members, pred.reward_b_members])  # [2n, K]
    member_r = [float(np.corrcoef(members[:, k], lengths)[0, 1]) for k in range(members.shape[1])]
    return {
        "method": method,
        "accuracy": m["accuracy"],
        "log_loss": m["log_loss"],
        "ece": m["ece"],
        "length_r": m["length_corr"],
        "member_r": float(np.mean(member_r)),  # each member's own reward–length r, averaged
        "acc_longer": m["acc_preferred_longer"],
        "acc_shorter": m["acc_preferred_shorter"],
        "n_longer": m["n_preferred_longer"],
        "n_shorter": m["n_preferred_shorter"],
        "temperature": ens.temperature,  # the calibration T every reward gap is divided by
        "train_s": round(train_s, 1),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    """Mean (± sd over seeds) per setting and method; Δ accuracy is paired with 'none' on the same seed."""
    keys = ("accuracy", "delta_acc", "log_loss", "ece", "length_r", "member_r", "acc_longer", "acc_shorter")
    lines = [
        "| setting | method | accuracy | Δ acc vs none | log-loss | ECE | reward–length r | r of one member "
        "| acc, chosen longer | acc, chosen shorter | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = {(r["setting"], r["seed"]): r["accuracy"] for r in rows if r["method"] == "none"}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        r = {
            **r,
            "delta_acc": None
            if (r["setting"], r["seed"]) not in base
            else r["accuracy"] - base[r["setting"], r["seed"]],
        }
        groups.setdefault((r["setting"], r["method"]), []).append(r)
    for (setting, method), rs in groups.items():
        cells = []
        for k in keys:
            v = np.array([r[k] for r in rs if r.get(k) is not None], dtype=float)
            if not len(v):
                cells.append("—")
                continue
            mean = f"{v.mean():+.3f}" if k == "delta_acc" else f"{v.mean():.3f}"
            cells.append(mean + (f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else ""))
        secs = np.mean([r["train_s"] for r in rs])
        lines.append(f"| {setting} | {method} | " + " | ".join(cells) + f" | {secs:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=SHARED)
    ap.add_argument("--mode", choices=["heads", "adapted", "finetune"], default="heads")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cpu hides any GPU from torch")
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    ap.add_argument("--settings", nargs="+", choices=["harmless", "flip"], default=["harmless", "flip"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--flip-share", type=float, default=0.4, help="share of chosen-longer pairs in the flip test set")
    ap.add_argument("--subset", type=int, default=0, help="first N train and N test pairs only (smoke test)")
    ap.add_argument("-k", type=int, default=None, help="ensemble size (default: ModelConfig's)")
    ap.add_argument("--epochs", type=int, default=None, help="fine-tune epochs (default: ModelConfig's)")
    ap.add_argument("--head", choices=["linear", "mlp"], default=None, help="heads mode's head (default: mlp)")
    ap.add_argument("--debias-weight", type=float, default=None, help="odin's λ (default: ModelConfig's)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--table-from", type=Path, default=None, help="print the table of rows saved with --json; no run")
    args = ap.parse_args()
    if args.table_from:
        print(_table(json.loads(args.table_from.read_text())))
        return
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        src, origin = _sources(args.data_dir, Path(scratch))
        print(f"data: {origin}; mode {args.mode}, device {args.device}, seeds {args.seeds}", flush=True)
        for seed in args.seeds:
            for setting, (train, test) in _settings(src, args, seed).items():
                share = np.mean([_chosen_longer(r) > 0 for r in train])
                test_share = np.mean([_chosen_longer(r) > 0 for r in test])
                print(
                    f"[seed {seed}] {setting}: train {len(train)} pairs (chosen longer {share:.1%}), "
                    f"test {len(test)} pairs (chosen longer {test_share:.1%})",
                    flush=True,
                )
                for method in args.methods:
                    row = {"setting": setting, "seed": seed, **_run(method, train, test, args, seed)}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    print()
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
