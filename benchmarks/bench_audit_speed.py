"""Issue #23 item 4: how long `prefloop audit` of an adapted (default-mode) model takes on 1,000 HH pairs.

    python benchmarks/bench_audit_speed.py                             # trains a default model first
    python benchmarks/bench_audit_speed.py --model prefloop-artifacts/models/rm-1a2b3c4d
    python benchmarks/bench_audit_speed.py --pairs 1000 --plain-pairs 100

``--pairs`` pairs of the shared HH harmless file (a seeded sample, as ``audit --max-pairs``
takes it) are audited with every probe, exactly as ``prefloop audit`` does, three ways:

1. **packed, cold**: ``RewardEnsemble.response_rewards`` with an empty feature cache: every
   distinct text once, the responses of one prompt that share a prompt window in one sequence;
2. **packed, warm**: the same again, every feature now in the cache (what a milestone audit
   costs after a heads-only retrain, which keeps the backbone);
3. **plain** (the path before #23): each text scored as the pair (prompt, text, text), on the
   first ``--plain-pairs`` pairs, with an empty cache; the packed path audits the same pairs
   again for the comparison, and the script prints the largest difference between the two
   paths' rewards and probe statistics.

Without ``--model``, a default adapted model (every [model] default) is trained first on the
file's pairs that are not audited. Times are wall seconds and this process's CPU seconds (on
a shared machine the wall time depends on what else runs; the CPU time much less).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless-base-test.dev.jsonl.gz"


def fresh_cache(ens: Any, folder: Path) -> None:
    """Point an adapted model's feature cache at an empty folder."""
    from prefloop.model.backbone import EmbeddingCache

    impl = ens._impl
    namespace = dataclasses.replace(impl.config, backbone=f"adapted-{impl.backbone_version}", gguf_file=None)
    impl.cache = EmbeddingCache(folder, namespace, "head-input")


def timed(label: str, n_pairs: int, run: Callable[[], Any]) -> Any:
    wall, cpu = time.perf_counter(), time.process_time()
    out = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label}: {n_pairs} pairs in {wall:.1f} s wall ({n_pairs / wall:.2f} pairs/s), {cpu:.1f} s CPU", flush=True)
    return out


def recording(scorer: Callable[[Sequence[tuple[str, str]]], np.ndarray], into: dict[str, Any]) -> Any:
    def score(items: Sequence[tuple[str, str]]) -> np.ndarray:
        rewards = scorer(items)
        into.update(zip(items, rewards, strict=True))
        return rewards

    return score


def train_default(pairs: list[tuple[str, str, str]], cache: Path) -> Any:
    from prefloop.model import ModelConfig, PreferenceExample, RewardEnsemble
    from prefloop.types import Choice

    examples = [PreferenceExample(p, a, b, Choice.A) for p, a, b in pairs]  # the file's a is the chosen one
    print(f"training a default adapted model on {len(examples)} pairs", flush=True)
    ens, _ = RewardEnsemble.train(examples, ModelConfig(cache_dir=str(cache)), progress=False)
    return ens


def main() -> None:
    from prefloop.loop.audit import audit_pairs
    from prefloop.model import RewardEnsemble
    from prefloop.model.audit import ensemble_scorer, run_audit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--model", default=None, help="a saved adapted model folder (default: train one)")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--plain-pairs", type=int, default=100, help="pairs for the plain path (0: skip it)")
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()

    every = audit_pairs(args.data)
    pairs = audit_pairs(args.data, max_pairs=args.pairs, seed=0)
    work = Path(tempfile.mkdtemp(prefix="bench-audit-speed-"))
    if args.model:
        ens = RewardEnsemble.load(args.model)
    else:
        audited = set(pairs)
        ens = train_default([p for p in every if p not in audited], work / "train-cache")
    if ens.config.mode != "adapted":
        raise SystemExit(f"{args.model} is a {ens.config.mode} model; this benchmark times the adapted mode")
    texts = len({(p, x) for p, a, b in pairs for x in (a, b)})
    print(f"model {ens.name} (adapted, K={ens.config.k}, max_length {ens.config.max_length}); data {args.data}")
    print(f"audit {len(pairs)} pairs, {texts} distinct responses, 7 versions of each (6 probes)", flush=True)

    fresh_cache(ens, work / "cold")
    packed = timed(
        "packed, cold cache",
        len(pairs),
        lambda: run_audit(pairs, ensemble_scorer(ens), resamples=args.resamples),
    )
    timed("packed, warm cache", len(pairs), lambda: run_audit(pairs, ensemble_scorer(ens), resamples=args.resamples))
    for probe in packed.probes:
        print(f"  {probe.name:<17} mean shift {probe.mean_shift:+.4f}  flip rate {probe.flip_rate}")
    if args.plain_pairs <= 0:
        return
    subset = pairs[: args.plain_pairs]
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    fresh_cache(ens, work / "plain")
    plain = timed(
        "plain (one pair per text), cold cache",
        len(subset),
        lambda: run_audit(subset, recording(ensemble_scorer(ens, packed=False), old), resamples=args.resamples),
    )
    fresh_cache(ens, work / "packed-subset")
    again = timed(
        "packed, cold cache, same pairs",
        len(subset),
        lambda: run_audit(subset, recording(ensemble_scorer(ens), new), resamples=args.resamples),
    )
    reward_diff = max(abs(float(old[k]) - float(new[k])) for k in old)
    stat_diff = 0.0
    for a, b in zip(plain.probes, again.probes, strict=True):
        for field in ("mean_shift", "shift_beyond_length", "flip_rate", "share_increased"):
            x, y = getattr(a, field), getattr(b, field)
            if x is not None and y is not None:
                stat_diff = max(stat_diff, abs(x - y))
    print(f"plain vs packed on {len(subset)} pairs: {len(old)} texts, max |reward difference| {reward_diff:.2e}")
    print(
        f"max |difference| of any probe statistic (mean shift, beyond length, flip rate, share rose): {stat_diff:.2e}"
    )


if __name__ == "__main__":
    main()
