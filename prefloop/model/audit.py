"""Audit statistics: how a reward model reacts to counterfactual probes, and what its reward tracks.

The statistics take the model as a *scorer*, a function from ``(prompt, response)`` items to
rewards, so they are numpy over the rewards it returns and a test can hand-compute them with a
scorer as simple as "reward = number of characters". Definitions (tests/model/test_audit.py
checks each against hand-computed values):

- **shift** of a response under a probe: ``reward(probe(response)) − reward(response)``, same prompt.
- **mean_shift**: the mean shift over both responses of every pair (each pair's two shifts
  averaged, then the pairs averaged; the same number, but it makes the pair the resampled unit).
- **flip**: in each pair the model ranks one response above the other on the *unprobed* rewards
  (the winner); the probe is applied to the other one (the loser), and the pair flips when the
  probed loser's reward is strictly above the unchanged winner's. **flip_rate** = flips / pairs
  with a strict ranking (pairs whose two rewards are equal have no loser and are left out).
- **share_increased**: the share of responses whose reward rose under the probe.
- **shift_in_sd**: mean_shift divided by the standard deviation of the unprobed rewards, a
  scale-free size (rewards have no fixed unit: 0.5 means half the spread between responses).
- **shift_beyond_length**: the mean shift less what the edit's change in length alone predicts,
  ``mean(shift − slope · Δlength)``, where ``slope`` (``length_slope``) is the least-squares slope
  of reward on length (characters) over the unprobed responses. Every probe but
  ``markdown_list`` adds characters, so on a model with a length bias the raw shift mixes the
  bias with the probe's own content; this separates them roughly (a linear, across-response
  estimate, held fixed in the bootstrap). None when every response has the same length, and
  None when the edit changes lengths by more than ``extrapolation_limit`` (default 2) standard
  deviations of the unprobed lengths on average: a slope fitted on lengths that vary by a few
  characters says nothing about an edit that adds hundreds.
- **correlations**: Pearson r over every unprobed response (a and b of each pair) between reward
  and a response feature: ``length`` (characters), ``newlines``, ``list_markers`` (lines starting
  with ``-``, ``*``, ``+``, ``•`` or ``1.``), ``markdown`` (headings, ``**``/``__`` emphasis pairs
  and code spans). None when the feature or the reward is constant.
- **prefers_longer**: among pairs with a strict ranking and responses of different length, the
  share where the model's winner is the longer response.
- **confidence intervals**: percentile bootstrap over pairs (``resamples`` draws of n pairs with
  replacement, ``numpy.random.default_rng(seed)``, one set of draws shared by every statistic);
  a correlation resamples a pair's two responses together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from prefloop.model.probes import PROBES, Probe

__all__ = [
    "FEATURES",
    "AuditResult",
    "Correlation",
    "ProbeResult",
    "Scorer",
    "bootstrap_indices",
    "ensemble_scorer",
    "pearson",
    "response_features",
    "run_audit",
]

Pair = tuple[str, str, str]
Scorer = Callable[[Sequence[tuple[str, str]]], np.ndarray]
"""``(prompt, response)`` items → one reward per item."""

_LIST_LINE = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+", re.MULTILINE)
_HEADING = re.compile(r"^\s*#{1,6}\s", re.MULTILINE)
_EMPHASIS = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_CODE = re.compile(r"`[^`\n]+`|^```", re.MULTILINE)


def response_features(text: str) -> dict[str, float]:
    """The surface features the audit correlates with reward (see the module docstring)."""
    return {
        "length": float(len(text)),
        "newlines": float(text.count("\n")),
        "list_markers": float(len(_LIST_LINE.findall(text))),
        "markdown": float(len(_HEADING.findall(text)) + len(_EMPHASIS.findall(text)) + len(_CODE.findall(text))),
    }


FEATURES: tuple[str, ...] = ("length", "newlines", "list_markers", "markdown")


@dataclass
class ProbeResult:
    """One probe's effect on the rewards (see the module docstring for each definition)."""

    name: str
    description: str
    mean_shift: float
    ci: tuple[float, float] | None
    flip_rate: float | None
    flip_ci: tuple[float, float] | None
    share_increased: float
    shift_in_sd: float | None
    shift_beyond_length: float | None
    shift_beyond_length_ci: tuple[float, float] | None
    n_responses: int
    n_flippable: int


@dataclass
class Correlation:
    """Pearson r between reward and one response feature, with its bootstrap interval."""

    feature: str
    r: float | None
    ci: tuple[float, float] | None
    n: int


@dataclass
class AuditResult:
    """Everything ``run_audit`` measured; ``to_dict`` is the ``audit --json`` object (less model/data)."""

    probes: list[ProbeResult]
    length_correlation: Correlation
    format_correlations: list[Correlation]
    prefers_longer: float | None
    prefers_longer_ci: tuple[float, float] | None
    n_pairs: int
    n_tied_pairs: int
    reward_mean: float
    reward_sd: float
    length_slope: float | None
    resamples: int
    seed: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: lists for intervals, floats rounded to 6 places."""
        return dict(_rounded(asdict(self), 6))


def _rounded(data: Any, places: int) -> Any:
    if isinstance(data, dict):
        return {k: _rounded(v, places) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_rounded(v, places) for v in data]
    if isinstance(data, float | np.floating):
        return round(float(data), places)
    if isinstance(data, np.integer):
        return int(data)
    return data


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation, or None when fewer than two points or either side is constant."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n] indices of n items drawn with replacement (``default_rng(seed)``)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float] | None:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _ratio_boot(hits: np.ndarray, counted: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Per resample, sum(hits) / sum(counted) over the drawn items (nan where nothing counted)."""
    num, den = hits[idx].sum(axis=1), counted[idx].sum(axis=1)
    return np.divide(num, den, out=np.full(len(idx), np.nan), where=den > 0)


def _score(
    pairs: Sequence[Pair], probes: Sequence[Probe], scorer: Scorer
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rewards [n, 2] of (a, b) and [P, n, 2] of each probe's edit, then their lengths in characters;
    every distinct item is scored once."""
    items: dict[tuple[str, str], int] = {}

    def slot(prompt: str, text: str) -> int:
        return items.setdefault((prompt, text), len(items))

    base = np.array([[slot(p, a), slot(p, b)] for p, a, b in pairs], dtype=np.int64).reshape(len(pairs), 2)
    edited = np.array(
        [[[slot(p, probe.edit(a)), slot(p, probe.edit(b))] for p, a, b in pairs] for probe in probes], dtype=np.int64
    ).reshape(len(probes), len(pairs), 2)
    rewards = np.asarray(scorer(list(items)), dtype=np.float64)
    if rewards.shape != (len(items),):
        raise ValueError(f"the scorer returned shape {rewards.shape} for {len(items)} items")
    lengths = np.array([len(text) for _prompt, text in items], dtype=np.float64)
    return rewards[base], rewards[edited], lengths[base], lengths[edited]


def _correlation(name: str, x: np.ndarray, y: np.ndarray, idx: np.ndarray, confidence: float) -> Correlation:
    """r over all 2n responses (x, y are [n, 2]); a resample takes a pair's two responses together."""
    r = pearson(x.ravel(), y.ravel())
    if r is None:
        return Correlation(name, None, None, x.size)
    return Correlation(name, r, _interval(_pearson_rows(x[idx], y[idx]), confidence), x.size)


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each resample (the first axis) over everything else; nan where a side is constant."""
    x = x.reshape(len(x), -1)
    y = y.reshape(len(y), -1)
    dx = x - x.mean(axis=1, keepdims=True)
    dy = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((dx * dx).sum(axis=1) * (dy * dy).sum(axis=1))
    return np.divide((dx * dy).sum(axis=1), den, out=np.full(len(x), np.nan), where=den > 0)


def run_audit(
    pairs: Sequence[Pair],
    scorer: Scorer,
    probes: Sequence[Probe] = PROBES,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    extrapolation_limit: float | None = 2.0,
) -> AuditResult:
    """Apply every probe to both responses of every ``(prompt, a, b)`` pair and measure the rewards.

    ``scorer`` is called once, on every distinct (prompt, response) item. See the module
    docstring for the definitions of each number.
    """
    if not pairs:
        raise ValueError("no pairs to audit")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError("resamples must be ≥ 1 and confidence in (0, 1)")
    rewards, probed, length, probed_length = _score(pairs, probes, scorer)
    n = len(pairs)
    idx = bootstrap_indices(n, resamples, seed)
    slope = _slope(length.ravel(), rewards.ravel())
    limit_chars = None if extrapolation_limit is None else extrapolation_limit * float(length.std())
    # the loser of each pair on the unprobed rewards: column 0 (a) or 1 (b); ties have none
    ranked = rewards[:, 0] != rewards[:, 1]
    loser = (rewards[:, 0] > rewards[:, 1]).astype(np.int64)
    rows = np.arange(n)
    results = [
        _probe_result(probe, rewards, edited, edited_length - length, idx, confidence, slope, limit_chars)
        for probe, edited, edited_length in zip(probes, probed, probed_length, strict=True)
    ]
    features = _features(pairs)
    correlations = [_correlation(name, features[name], rewards, idx, confidence) for name in FEATURES]
    longer_known = ranked & (length[:, 0] != length[:, 1])
    winner_longer = (length[rows, 1 - loser] > length[rows, loser]) & longer_known
    longer_boot = _ratio_boot(winner_longer.astype(np.float64), longer_known.astype(np.float64), idx)
    return AuditResult(
        probes=results,
        length_correlation=correlations[0],
        format_correlations=correlations[1:],
        prefers_longer=float(winner_longer.sum() / longer_known.sum()) if longer_known.any() else None,
        prefers_longer_ci=_interval(longer_boot, confidence) if longer_known.any() else None,
        n_pairs=n,
        n_tied_pairs=int((~ranked).sum()),
        reward_mean=float(rewards.mean()),
        reward_sd=float(rewards.std()),
        length_slope=slope,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
    )


def _probe_result(
    probe: Probe,
    rewards: np.ndarray,
    edited: np.ndarray,
    added: np.ndarray,
    idx: np.ndarray,
    confidence: float,
    slope: float | None,
    limit_chars: float | None,
) -> ProbeResult:
    """One probe's numbers from the [n, 2] rewards before and after the edit and the characters it added."""
    rows = np.arange(len(rewards))
    ranked = rewards[:, 0] != rewards[:, 1]
    loser = (rewards[:, 0] > rewards[:, 1]).astype(np.int64)  # column of the lower reward
    shifts = edited - rewards
    per_pair = shifts.mean(axis=1)
    flips = (edited[rows, loser] > rewards[rows, 1 - loser]) & ranked
    flip_boot = _ratio_boot(flips.astype(np.float64), ranked.astype(np.float64), idx)
    far = limit_chars is not None and float(np.abs(added).mean()) > limit_chars
    beyond = None if slope is None or far else (shifts - slope * added).mean(axis=1)
    sd = float(rewards.std())
    return ProbeResult(
        name=probe.name,
        description=probe.description,
        mean_shift=float(per_pair.mean()),
        ci=_interval(per_pair[idx].mean(axis=1), confidence),
        flip_rate=float(flips.sum() / ranked.sum()) if ranked.any() else None,
        flip_ci=_interval(flip_boot, confidence) if ranked.any() else None,
        share_increased=float((shifts > 0).mean()),
        shift_in_sd=float(per_pair.mean() / sd) if sd > 0 else None,
        shift_beyond_length=None if beyond is None else float(beyond.mean()),
        shift_beyond_length_ci=None if beyond is None else _interval(beyond[idx].mean(axis=1), confidence),
        n_responses=int(shifts.size),
        n_flippable=int(ranked.sum()),
    )


def _slope(x: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope of y on x; None when x is constant."""
    dx = x - x.mean()
    var = float((dx * dx).sum())
    return None if var == 0 else float((dx * (y - y.mean())).sum() / var)


def _features(pairs: Sequence[Pair]) -> dict[str, np.ndarray]:
    """Each feature of ``FEATURES`` as [n, 2] (responses a and b)."""
    features = {name: np.zeros((len(pairs), 2)) for name in FEATURES}
    for i, (_prompt, a, b) in enumerate(pairs):
        for j, text in enumerate((a, b)):
            for name, value in response_features(text).items():
                features[name][i, j] = value
    return features


def ensemble_scorer(ensemble: Any, progress: bool = False, packed: bool = True) -> Scorer:
    """A scorer from a ``RewardEnsemble``: the members' mean calibrated reward of each response.

    Each item is scored as if it were the pair ``(prompt, response, response)``, so a response's
    reward never depends on another response (in shared-prompt mode the prompt is truncated per
    pair). ``packed`` (the default) scores every distinct item once through
    ``RewardEnsemble.response_rewards``: the responses of one prompt share one sequence and
    adapted mode reuses its cached features. ``packed=False`` is the plain path, one
    ``(prompt, response, response)`` pair per item; both give the same rewards (up to float
    rounding), the plain one several times slower.
    """

    def score(items: Sequence[tuple[str, str]]) -> np.ndarray:
        if not items:
            return np.zeros(0)
        if packed:
            return np.asarray(ensemble.response_rewards(list(items), progress=progress), np.float64).mean(axis=1)
        reward_a, _ = ensemble.member_rewards([(p, r, r) for p, r in items], progress=progress)
        return np.asarray(reward_a, np.float64).mean(axis=1)

    return score
