"""Train/test splits of the shared HH files whose test length prior is reversed (issue #23).

Read from ../shared/data (or $PREFLOOP_SHARED_DATA) at run time; nothing is copied into the
repository. A pair is "chosen longer" when its preferred response has more characters;
pairs of equal length are left out of the stratification and stay on the training side.

    from length_splits import build_setting
    train, test, info = build_setting("harmless", seed=0)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(os.environ.get("PREFLOOP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
HARMLESS = "hh-rlhf-harmless-base-test.dev.jsonl.gz"
HELPFUL = ("hh-rlhf-helpful-base-test.jsonl.gz", "hh-rlhf-helpful-rejection-sampled-test.jsonl.gz")
SETTINGS = ("harmless", "helpful", "harmless-iid")


def decisive(path: Path) -> list[Any]:
    """The file's pairs with an A or B label (degenerate rows are skipped by the reader)."""
    from prefloop.data.ingest import read_records
    from prefloop.types import Choice

    if not path.exists():
        raise SystemExit(f"{path} not found: set PREFLOOP_SHARED_DATA to the folder of the shared HH files")
    return [r for r in read_records(str(path)).records if r.label in (Choice.A, Choice.B)]


def chosen_longer(r: Any) -> int:
    """+1 when the preferred response is the longer one, −1 when shorter, 0 for equal length."""
    win, lose = (r.response_a, r.response_b) if r.label.value == "a" else (r.response_b, r.response_a)
    return int(np.sign(len(win) - len(lose)))


def reversed_split(records: list[Any], n_test: int, seed: int) -> tuple[list[Any], list[Any]]:
    """(train, test): the test's share of chosen-longer pairs is 1 − the pool's; train is everything else."""
    rng = np.random.default_rng(seed)
    signs = np.array([chosen_longer(r) for r in records])
    longer, shorter = np.flatnonzero(signs > 0), np.flatnonzero(signs < 0)
    share = len(longer) / max(len(longer) + len(shorter), 1)
    n_long = round((1 - share) * n_test)
    n_long, n_short = min(n_long, len(longer)), min(n_test - n_long, len(shorter))
    test_idx = np.concatenate([rng.choice(longer, n_long, replace=False), rng.choice(shorter, n_short, replace=False)])
    in_test = np.zeros(len(records), dtype=bool)
    in_test[test_idx] = True
    test = [records[i] for i in rng.permutation(test_idx)]
    train = [records[i] for i in rng.permutation(np.flatnonzero(~in_test))]
    return train, test


def build_setting(name: str, seed: int, max_train: int = 0) -> tuple[list[Any], list[Any], str]:
    """(train, test, a one-line description) of setting ``name`` for ``seed``."""
    if name == "helpful":
        records = [r for f in HELPFUL for r in decisive(SHARED / f)]
        train, test = reversed_split(records, 1000, seed)
    else:
        records = decisive(SHARED / HARMLESS)
        n_test = round(len(records) * 0.31)  # 360 of 1,170: enough chosen-longer pairs to mirror the prior
        if name == "harmless":
            train, test = reversed_split(records, n_test, seed)
        elif name == "harmless-iid":
            perm = np.random.default_rng(seed).permutation(len(records))
            test = [records[i] for i in perm[:n_test]]
            train = [records[i] for i in perm[n_test:]]
        else:
            raise SystemExit(f"unknown setting {name!r}; use one of {', '.join(SETTINGS)}")
    if max_train:
        train = train[:max_train]

    def share(rs: list[Any]) -> float:
        return float(np.mean([chosen_longer(r) > 0 for r in rs]))

    info = (
        f"train {len(train)} pairs (chosen longer {share(train):.1%}), "
        f"test {len(test)} pairs (chosen longer {share(test):.1%})"
    )
    return train, test, info
