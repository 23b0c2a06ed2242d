"""Plain preference records → training targets, splits, bootstrap resamples and replay.

Several annotators on one pair: each label is its own ``PreferenceExample`` and each counts
once in the likelihood (weighted by ``weight``). Identical pairs are grouped into one
``PairTargets`` row holding the summed weights of A-wins, B-wins and ties, so the pair is
encoded once while the loss equals the sum over its labels; disagreement between annotators
therefore becomes a soft target. Skips carry no information and are dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prefloop.types import Choice

__all__ = ["PairTargets", "PreferenceExample", "aggregate", "bootstrap_indices", "replay_sample", "split"]


@dataclass(frozen=True)
class PreferenceExample:
    """One label on one pair, stated against (response_a, response_b) as given.

    ``strength`` (e.g. 0..1 from a Likert scale) feeds the optional margin; ``weight``
    scales the label's contribution to the loss.
    """

    prompt: str
    response_a: str
    response_b: str
    choice: Choice
    strength: float | None = None
    weight: float = 1.0


@dataclass
class PairTargets:
    """Unique (prompt, a, b) pairs with summed label weights; row i ↔ pairs[i]."""

    pairs: list[tuple[str, str, str]]
    wins: np.ndarray  # [n, 3] summed weights of (A wins, B wins, tie)
    margin: np.ndarray  # [n] mean margin of the decisive labels (0 when none)
    keys: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pairs)

    def subset(self, idx: np.ndarray) -> PairTargets:
        """Rows ``idx`` (repeats allowed: a bootstrap resample sums the repeated rows' weights)."""
        idx = np.asarray(idx, dtype=np.int64)
        uniq, counts = np.unique(idx, return_counts=True)
        return PairTargets(
            pairs=[self.pairs[i] for i in uniq],
            wins=self.wins[uniq] * counts[:, None],
            margin=self.margin[uniq],
            keys=[self.keys[i] for i in uniq],
        )


def tensors_digest(tensors: dict[str, Any]) -> str:
    """16 hex digits of the tensors' names and values: a model version's content hash."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def pair_digest(prompt: str, a: str, b: str) -> str:
    """Oriented identity of a pair (a, b); (b, a) is a different row with flipped targets."""
    h = hashlib.sha256()
    for part in (prompt, a, b):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:24]


def aggregate(examples: list[PreferenceExample], margin_scale: float = 0.0) -> PairTargets:
    """Group labels by pair; skips dropped; a label on (b, a) is flipped onto (a, b)."""
    index: dict[str, int] = {}
    pairs: list[tuple[str, str, str]] = []
    wins: list[list[float]] = []
    margin_sum: list[float] = []
    margin_w: list[float] = []
    for ex in examples:
        if ex.choice is Choice.SKIP or ex.weight <= 0:
            continue
        choice: Choice = ex.choice
        key = pair_digest(ex.prompt, ex.response_a, ex.response_b)
        if key not in index:
            flipped = pair_digest(ex.prompt, ex.response_b, ex.response_a)
            if flipped in index:
                key, choice = flipped, choice.flipped()
            else:
                index[key] = len(pairs)
                pairs.append((ex.prompt, ex.response_a, ex.response_b))
                wins.append([0.0, 0.0, 0.0])
                margin_sum.append(0.0)
                margin_w.append(0.0)
        i = index[key]
        col = {Choice.A: 0, Choice.B: 1, Choice.TIE: 2}[choice]
        wins[i][col] += ex.weight
        if col < 2 and ex.strength is not None:
            margin_sum[i] += ex.weight * margin_scale * float(ex.strength)
            margin_w[i] += ex.weight
    w = np.asarray(wins, dtype=np.float64).reshape(-1, 3)
    msum, mw = np.asarray(margin_sum), np.asarray(margin_w)
    margin = np.divide(msum, mw, out=np.zeros_like(msum), where=mw > 0)
    return PairTargets(pairs=pairs, wins=w, margin=margin, keys=list(index))


def split(
    targets: PairTargets, val_fraction: float, seed: int, how: str = "random", min_val: int = 0
) -> tuple[PairTargets, PairTargets | None]:
    """Seeded train/validation split over unique pairs (all labels of a pair stay together).

    ``random``: a seeded permutation, exactly ``round(n × val_fraction)`` pairs held out, but at
    least ``min_val`` as long as that leaves four in five pairs to train on (calibration needs
    ``MIN_CALIBRATION_PAIRS``: at 100 labels, 10 % is 10 pairs and the temperature would be skipped).
    ``hashed``: a pair is held out when a hash of its identity and ``seed`` falls below
    ``val_fraction``, so it is held out in EVERY set that contains it (a subset's validation
    pairs are the whole set's validation pairs that it holds); about ``val_fraction`` of them.
    """
    n = len(targets)
    if how == "hashed":
        val = np.array([_unit_hash(f"{seed}:{key}") < val_fraction for key in targets.keys], dtype=bool)
        if not val.any() or n - int(val.sum()) < 2:
            return targets, None
        return targets.subset(np.flatnonzero(~val)), targets.subset(np.flatnonzero(val))
    n_val = max(round(n * val_fraction), min(min_val, n // 5)) if val_fraction > 0 else 0
    if n_val == 0 or n - n_val < 2:
        return targets, None
    perm = np.random.default_rng(seed).permutation(n)
    return targets.subset(np.sort(perm[n_val:])), targets.subset(np.sort(perm[:n_val]))


def _unit_hash(text: str) -> float:
    """A uniform number in [0, 1) from ``text`` (the first 8 bytes of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


def bootstrap_indices(n: int, seed: int) -> np.ndarray:
    """n row indices drawn with replacement (one ensemble member's resample)."""
    return np.random.default_rng(seed).integers(0, n, size=n)


def replay_sample(
    new: list[PreferenceExample], old: list[PreferenceExample], fraction: float, seed: int
) -> list[PreferenceExample]:
    """New labels plus ``fraction × len(new)`` old labels drawn without replacement (seeded); ``inf`` = all."""
    if fraction == float("inf"):
        return list(new) + list(old)
    n_old = min(len(old), round(fraction * len(new)))
    if n_old <= 0:
        return list(new)
    pick = np.random.default_rng(seed).choice(len(old), size=n_old, replace=False)
    return list(new) + [old[i] for i in sorted(pick)]
