"""Issue #14 item 4 (the audit part): audit a heads-mode model trained on real HH harmless pairs.

    python benchmarks/bench_audit.py                                  # writes docs/img/audit.png
    python benchmarks/bench_audit.py --audit-pairs 585 --resamples 2000

The shared HH harmless file (1,170 pairs, read from ../shared/data at run time; the packaged
demo sample's 500 harmless pairs when it is missing) is split in two halves by a seeded
permutation (the split of bench_default_train.py). A heads-mode ensemble (MiniLM, K = 5, the
defaults) trains on one half; ``--audit-pairs`` pairs of the other half, never seen in training,
are audited with every probe exactly as ``prefloop audit`` does (``run_audit`` with the
ensemble's scorer). Prints the split, training time, held-out accuracy, the probe table and the
correlations; writes the PNG (for the README) and the markdown report.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from prefloop.model.audit import Scorer
from prefloop.types import PairRecord

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless-base-test.dev.jsonl.gz"
ROOT = Path(__file__).resolve().parents[1]


def load_pairs(path: Path) -> tuple[list[PairRecord], str]:
    """Decisive HH harmless pairs: the shared file, else the packaged sample's harmless pairs."""
    from prefloop.data.ingest import read_records
    from prefloop.resources import demo_sample
    from prefloop.types import Choice

    if path.exists():
        records, source = read_records(str(path)).records, str(path)
    else:
        sample = read_records(str(demo_sample())).records
        records = [r for r in sample if r.dimension == "harmless"]
        source = f"{demo_sample()} (harmless pairs; {path} is missing)"
    return [r for r in records if r.label in (Choice.A, Choice.B)], source


def main() -> None:
    from prefloop.model import ModelConfig, PreferenceExample, RewardEnsemble, evaluate_predictions
    from prefloop.model.audit import ensemble_scorer, run_audit
    from prefloop.model.audit_report import audit_markdown, plot_audit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--audit-pairs", type=int, default=300, help="held-out pairs audited (of 585)")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "audit.png")
    ap.add_argument("--out", type=Path, default=Path("runs/audit"))
    args = ap.parse_args()

    records, source = load_pairs(args.data)
    perm = np.random.default_rng(args.seed).permutation(len(records))
    half = len(records) // 2
    train = [records[i] for i in perm[:half]]
    test = [records[i] for i in perm[half:]][: args.audit_pairs]
    print(f"data: {source}\ntrain {len(train)} pairs, audit {len(test)} held-out pairs", flush=True)

    config = ModelConfig(mode="heads", seed=args.seed)
    t0 = time.perf_counter()
    examples = [PreferenceExample(r.prompt, r.response_a, r.response_b, r.label) for r in train]
    ens, _ = RewardEnsemble.train(examples, config, progress=False)
    print(f"trained {ens.name} (heads, K={config.k}) in {time.perf_counter() - t0:.0f} s", flush=True)

    pairs = [(r.prompt, r.response_a, r.response_b) for r in test]
    pred = ens.predict(pairs)
    accuracy = evaluate_predictions(pred.p_a, [r.label.value for r in test], p_tie=pred.p_tie, p_b=pred.p_b)
    print(f"held-out accuracy on the audited pairs: {accuracy['accuracy']:.3f}", flush=True)

    t0 = time.perf_counter()
    result = run_audit(pairs, ensemble_scorer(ens), resamples=args.resamples, seed=args.seed)
    print(f"audit: {len(pairs)} pairs x 7 versions of each response scored in {time.perf_counter() - t0:.0f} s")
    png = plot_audit(result, args.png, title="Heads model trained on HH harmless, held-out pairs")
    args.out.mkdir(parents=True, exist_ok=True)
    report = audit_markdown(result, ens.name, "HH harmless, held-out half", plot=str(png))
    (args.out / "audit.md").write_text(report)
    (args.out / "audit.json").write_text(json.dumps(result.to_dict(), indent=2))
    # the probe and correlation tables of the report, as they appear in it
    keep = [line for line in report.splitlines() if line.startswith("|") or line.startswith("The model prefers")]
    print("\n".join(keep))
    print_flip_margins(pairs, ensemble_scorer(ens))
    print(f"wrote {png} and {args.out / 'audit.md'}")


def print_flip_margins(pairs: list[tuple[str, str, str]], scorer: Scorer) -> None:
    """Which pairs flip: the reward margins of flipped pairs against all pairs (texts already embedded)."""
    from prefloop.model.probes import PROBES

    reward_a = scorer([(p, a) for p, a, _ in pairs])
    reward_b = scorer([(p, b) for p, _, b in pairs])
    margin, winner = np.abs(reward_a - reward_b), np.maximum(reward_a, reward_b)
    quartile = np.percentile(margin, 25)
    print(f"reward margin |r_a - r_b|: median {np.median(margin):.3f} over all pairs, lowest quartile < {quartile:.3f}")
    for probe in PROBES:
        losers = [
            (p, probe.edit(a if ra < rb else b)) for (p, a, b), ra, rb in zip(pairs, reward_a, reward_b, strict=True)
        ]
        flipped = (scorer(losers) > winner) & (reward_a != reward_b)
        if flipped.any():
            print(
                f"  {probe.name}: {flipped.sum()} flipped, median margin {np.median(margin[flipped]):.3f}, "
                f"{100 * np.mean(margin[flipped] < quartile):.0f} % of them in the lowest quartile"
            )


if __name__ == "__main__":
    main()
