"""Acquisition strategies by name: score → batch, composable by wrapping.

A strategy turns a ``ProbPool`` (what the ensemble said about the unlabelled pairs) into a
``Selection`` of ``k`` pool indices. ``name`` and ``params`` describe it completely and are
recorded on the tasks it creates, so ``get_strategy(s.name, **s.params)`` rebuilds it.

    get_strategy("bald")
    get_strategy("diverse", inner="bald", shortlist=2000)
    get_strategy("diverse:bald")              # the same, from a spec string
    get_strategy("diverse:margin", method="kmeanspp", max_per_prompt=2)
    get_strategy("epig", n_targets=200)       # scores with parameters (POOL_SCORERS)
    get_strategy("balpm", beta=0.1)           # BAL-PM: greedy BALD + feature-space entropy
    get_strategy("length_aware", share=0.25)  # noise_aware on length-residual rewards + a length quota

``Strategy.needs_embeddings`` says whether ``ProbPool.embeddings`` must be filled.
"""

from __future__ import annotations

import dataclasses
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from prefloop.acquisition import literature as L
from prefloop.acquisition import scores as S
from prefloop.acquisition.batch import apply_prompt_cap, diverse_select, exclusion_mask, shortlist, top_k
from prefloop.acquisition.feature_entropy import entropy_greedy_select
from prefloop.acquisition.length import (
    against_length,
    follows_length,
    length_decides,
    length_gap,
    length_residual,
    residual_probs,
)
from prefloop.acquisition.objectives import dimension_disagreement
from prefloop.errors import StrategyError

__all__ = [
    "POOL_SCORERS",
    "SCORERS",
    "DiverseStrategy",
    "EntropyBatchStrategy",
    "LengthAwareStrategy",
    "ProbPool",
    "ScoreStrategy",
    "Selection",
    "Strategy",
    "available_strategies",
    "configured_strategy",
    "get_strategy",
]

ScoreFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]

#: name → score function of (p_members, p_tie); higher = more worth labelling
SCORERS: dict[str, ScoreFn] = {
    "entropy": S.entropy,
    "bald": S.bald,
    "disagreement": S.disagreement,
    "logit_disagreement": S.logit_disagreement,
    "margin": S.margin,
}


@dataclass
class ProbPool:
    """What the ensemble said about the candidate pairs; row i is pool pair i.

    ``exclude`` (boolean mask or index array) marks pairs that must never be selected:
    labelled already, pending at any backend, or held out.
    """

    p_members: np.ndarray  # [n, K] P_k(a≻b)
    p_tie: np.ndarray | None = None  # [n] or [n, K]
    embeddings: np.ndarray | None = None  # [n, d] pair embeddings (diversity)
    prompt_ids: np.ndarray | None = None  # [n] any hashable ids (per-prompt caps)
    exclude: np.ndarray | None = None  # [n] bool mask, or indices
    rewards_a: np.ndarray | None = None  # [n, K] member rewards of response a (drts, delta_ucb; optional)
    rewards_b: np.ndarray | None = None  # [n, K] member rewards of response b
    acquired_embeddings: np.ndarray | None = None  # [m, d] labelled pairs outside the pool (balpm)
    dimension_probs: np.ndarray | None = None  # [n, D] each head's P(a≻b | not a tie) (dimension_disagreement)
    len_a: np.ndarray | None = None  # [n] characters of response a (length_aware)
    len_b: np.ndarray | None = None  # [n] characters of response b

    def __post_init__(self) -> None:
        p = np.asarray(self.p_members)
        self.p_members = p[:, None] if p.ndim == 1 else p
        n = self.n
        for name in (
            "p_tie",
            "embeddings",
            "prompt_ids",
            "rewards_a",
            "rewards_b",
            "dimension_probs",
            "len_a",
            "len_b",
        ):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"ProbPool.{name} has {len(value)} rows but p_members has {n}")

    @property
    def n(self) -> int:
        return int(self.p_members.shape[0])

    def excluded(self) -> np.ndarray:
        return exclusion_mask(self.n, self.exclude)


def _drts(pool: ProbPool, rng: np.random.Generator, *, beta: float = 1.0) -> np.ndarray:
    return L.drts(pool.p_members, rng, pool.p_tie, beta, pool.rewards_a, pool.rewards_b)


def _delta_ucb(pool: ProbPool, rng: np.random.Generator, *, beta: float = 1.0) -> np.ndarray:
    return L.delta_ucb(pool.p_members, pool.p_tie, beta, pool.rewards_a, pool.rewards_b)


def _epig(pool: ProbPool, rng: np.random.Generator, *, n_targets: int | None = 100) -> np.ndarray:
    # targets: a seeded sample of every pool row, labelled or not (the inputs we predict on)
    return L.epig(pool.p_members, pool.p_tie, n_targets=n_targets, rng=rng)


def _noise_aware(
    pool: ProbPool, rng: np.random.Generator, *, tie_max: float = 0.5, min_epistemic_share: float = 0.1
) -> np.ndarray:
    return L.noise_aware(pool.p_members, pool.p_tie, tie_max, min_epistemic_share)


def _dimension_disagreement(pool: ProbPool, rng: np.random.Generator) -> np.ndarray:
    if pool.dimension_probs is None:
        raise StrategyError(
            "dimension_disagreement needs a model with a head per dimension: train with --dimension A "
            "--dimension B (or [objectives] dimensions) first"
        )
    return dimension_disagreement(pool.dimension_probs)


#: name → score function of (pool, rng, **params) for scores that take parameters or more than p
POOL_SCORERS: dict[str, Callable[..., np.ndarray]] = {
    "dimension_disagreement": _dimension_disagreement,
    "drts": _drts,
    "delta_ucb": _delta_ucb,
    "epig": _epig,
    "noise_aware": _noise_aware,
}


def _score_params(name: str) -> set[str]:
    if name not in POOL_SCORERS:
        return set()
    sig = inspect.signature(POOL_SCORERS[name])
    return {n for n, prm in sig.parameters.items() if prm.kind is inspect.Parameter.KEYWORD_ONLY}


@dataclass
class Selection:
    """Chosen pool indices (in pick order) and each one's acquisition score."""

    indices: np.ndarray
    scores: np.ndarray
    strategy: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.indices.size)


class Strategy(ABC):
    """Base class: subclasses compute ``score``; ``select`` picks the batch."""

    name: str
    params: dict[str, Any]
    #: True when ``select`` reads ``pool.embeddings`` (callers compute them only then)
    needs_embeddings: bool = False
    #: True when ``select`` reads ``pool.acquired_embeddings``: the pairs already labelled or pending
    uses_acquired_set: bool = False
    #: True when ``select`` reads ``pool.len_a`` / ``pool.len_b`` (the responses' lengths)
    needs_lengths: bool = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, params={self.params!r})"

    @abstractmethod
    def score(self, pool: ProbPool, rng: np.random.Generator) -> np.ndarray:
        """One score per pool pair; higher = more worth labelling."""

    @abstractmethod
    def select(self, pool: ProbPool, k: int, rng: np.random.Generator | None = None) -> Selection:
        """The ``k`` pairs to label next (fewer when the pool runs out); exclusions always hold."""


class ScoreStrategy(Strategy):
    """Top-k of one score function, with an optional per-prompt cap.

    ``score_params`` go to a ``POOL_SCORERS`` function (e.g. ``beta`` for drts / delta_ucb,
    ``n_targets`` for epig); the plain ``SCORERS`` take none.
    """

    def __init__(self, name: str, max_per_prompt: int | None = None, **score_params: Any) -> None:
        if name != "random" and name not in SCORERS and name not in POOL_SCORERS:
            raise StrategyError(f"unknown score {name!r}; known: {', '.join(available_strategies())}")
        unknown = set(score_params) - _score_params(name)
        if unknown:
            takes = ", ".join(sorted(_score_params(name))) or "none besides max_per_prompt"
            raise StrategyError(
                f"strategy {name!r} got unknown parameter(s) {', '.join(sorted(unknown))}; it takes: {takes}"
            )
        _check_cap(max_per_prompt)
        self.name = name
        self.max_per_prompt = max_per_prompt
        self.score_params = dict(score_params)
        self.params = dict(score_params)
        if max_per_prompt is not None:
            self.params["max_per_prompt"] = max_per_prompt

    def score(self, pool: ProbPool, rng: np.random.Generator) -> np.ndarray:
        if self.name == "random":
            return S.random_scores(pool.n, rng)
        if self.name in POOL_SCORERS:
            return POOL_SCORERS[self.name](pool, rng, **self.score_params)
        return SCORERS[self.name](pool.p_members, pool.p_tie)

    def select(self, pool: ProbPool, k: int, rng: np.random.Generator | None = None) -> Selection:
        rng = rng if rng is not None else np.random.default_rng(0)
        s = self.score(pool, rng)
        idx = top_k(s, k, pool.excluded(), pool.prompt_ids, self.max_per_prompt)
        return Selection(idx, s[idx], self.name, dict(self.params))


def _check_cap(max_per_prompt: int | None) -> None:
    """A per-prompt cap is checked when the strategy is built, not at the push step."""
    if max_per_prompt is not None and (not isinstance(max_per_prompt, int) or max_per_prompt < 1):
        raise StrategyError(f"max_per_prompt must be a whole number of at least 1, got {max_per_prompt!r}")


class _EmbeddingWrapper(Strategy):
    """What the strategies that re-rank an inner one in embedding space share: the inner
    strategy's scores, a shortlist, a per-prompt cap, their parameters, and the embeddings."""

    needs_embeddings = True

    def __init__(self, inner: Strategy, shortlist: int | None, max_per_prompt: int | None, **params: Any) -> None:
        _check_cap(max_per_prompt)
        self.inner, self.shortlist, self.max_per_prompt = inner, shortlist, max_per_prompt
        self.needs_lengths = inner.needs_lengths
        self.params = {
            "inner": inner.name,
            "inner_params": dict(inner.params),
            **params,
            "shortlist": shortlist,
            "max_per_prompt": max_per_prompt,
        }

    def score(self, pool: ProbPool, rng: np.random.Generator) -> np.ndarray:
        return self.inner.score(pool, rng)

    def _embeddings(self, pool: ProbPool) -> np.ndarray:
        if pool.embeddings is None:
            raise StrategyError(f"strategy {self.name!r} needs pair embeddings: pass ProbPool(embeddings=...)")
        return pool.embeddings


class DiverseStrategy(_EmbeddingWrapper):
    """Wraps a strategy: shortlist its top ``M`` by score, then pick a spread-out batch of ``k``.

    ``shortlist`` fixes M; otherwise ``M = shortlist_factor · k``. ``method``: 'kcenter' or
    'kmeanspp'; ``score_weight`` > 0 keeps some pull towards the best scores (see
    ``batch.diverse_select``). Needs ``pool.embeddings``.
    """

    def __init__(
        self,
        inner: Strategy,
        shortlist: int | None = None,
        shortlist_factor: float = 10.0,
        method: str = "kcenter",
        score_weight: float = 0.0,
        max_per_prompt: int | None = None,
    ) -> None:
        if method not in ("kcenter", "kmeanspp"):
            raise StrategyError(f"unknown diversity method {method!r}; use 'kcenter' or 'kmeanspp'")
        super().__init__(
            inner,
            shortlist,
            max_per_prompt,
            shortlist_factor=shortlist_factor,
            method=method,
            score_weight=score_weight,
        )
        self.shortlist_factor = shortlist_factor
        self.method: Literal["kcenter", "kmeanspp"] = "kcenter" if method == "kcenter" else "kmeanspp"
        self.score_weight = score_weight
        self.name = f"diverse:{inner.name}"

    def select(self, pool: ProbPool, k: int, rng: np.random.Generator | None = None) -> Selection:
        embeddings = self._embeddings(pool)
        rng = rng if rng is not None else np.random.default_rng(0)
        s = self.score(pool, rng)
        m = self.shortlist if self.shortlist is not None else int(np.ceil(self.shortlist_factor * k))
        cand = shortlist(s, max(m, k), pool.excluded())
        idx = diverse_select(
            embeddings,
            cand,
            k,
            s,
            self.method,
            self.score_weight,
            pool.prompt_ids,
            self.max_per_prompt,
            rng,
        )
        return Selection(idx, s[idx], self.name, dict(self.params))


class EntropyBatchStrategy(_EmbeddingWrapper):
    """BAL-PM (Melo et al. 2024): a greedy batch maximising epistemic score + β·feature-space entropy gain.

    Each pick maximises ``inner``'s score (default BALD) plus β times the gain in a kNN
    entropy estimate of the acquired set (``feature_entropy.entropy_greedy_select``). The set
    starts as ``pool.acquired_embeddings`` when given, else the embeddings of the pool's
    excluded rows (labelled or pending pairs: both end up in the training set). ``shortlist``
    limits the search to the inner score's top M (default: every pair). Needs ``pool.embeddings``.
    """

    uses_acquired_set = True

    def __init__(
        self,
        inner: Strategy | None = None,
        beta: float = 1.0,
        n_neighbors: int = 1,
        dim: int | None = None,
        shortlist: int | None = None,
        max_per_prompt: int | None = None,
    ) -> None:
        if n_neighbors < 1:
            raise StrategyError("balpm: n_neighbors must be at least 1")
        inner = inner if inner is not None else ScoreStrategy("bald")
        super().__init__(inner, shortlist, max_per_prompt, beta=beta, n_neighbors=n_neighbors, dim=dim)
        self.beta, self.n_neighbors, self.dim = beta, n_neighbors, dim
        self.name = "balpm" if inner.name == "bald" else f"balpm:{inner.name}"

    def select(self, pool: ProbPool, k: int, rng: np.random.Generator | None = None) -> Selection:
        embeddings = self._embeddings(pool)
        rng = rng if rng is not None else np.random.default_rng(0)
        s = self.score(pool, rng)
        excluded = pool.excluded()
        cand = shortlist(s, self.shortlist if self.shortlist is not None else pool.n, excluded)
        acquired = pool.acquired_embeddings
        if acquired is None:
            acquired = np.asarray(embeddings[np.flatnonzero(excluded)], dtype=np.float64)
        idx, crit = entropy_greedy_select(
            s,
            embeddings,
            cand,
            k,
            acquired,
            self.beta,
            self.n_neighbors,
            self.dim,
            pool.prompt_ids,
            self.max_per_prompt,
        )
        return Selection(idx, crit, self.name, dict(self.params))


class LengthAwareStrategy(Strategy):
    """An inner strategy that counts length-explained confidence as *not* knowledge, plus a length quota.

    The ensemble's reward gaps are regressed on the pool against Δ = log(1 + chars_a) −
    log(1 + chars_b) (``length.length_residual``) and the inner strategy (default
    ``noise_aware``) scores the *residual* gaps: a pair the model is sure of only because one
    answer is longer looks as uncertain as its content makes it. Then ``share`` of each batch
    (round(share·k)) is reserved for the pairs the ``quota`` names, best residual score first:

    - ``follows``: the model's preferred side is the one its fitted length rule prefers (the
      longer one when the slope β > 0, the shorter one when β < 0) — the pairs whose label
      tells the model whether length was right;
    - ``against``: the model prefers the side its length rule does not — the pairs where its
      content signal overrides length, whose labels check that signal.

    Pairs of near-equal length (``length.NEAR_EQUAL``) are in neither. When too few quota pairs
    are left the inner strategy fills the batch. ``max_per_prompt`` holds over the whole batch.
    Needs ``pool.len_a`` / ``pool.len_b`` (characters of each response). Each ``Selection``
    also records the fitted ``length_slope`` and how many pairs the quota took.
    """

    def __init__(
        self,
        inner: Strategy | None = None,
        share: float = 0.25,
        quota: str = "follows",
        max_per_prompt: int | None = None,
    ) -> None:
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
            raise StrategyError(f"length_aware: share must be a number from 0 to 1, got {share!r}")
        if quota not in ("follows", "against"):
            raise StrategyError(f"length_aware: quota must be 'follows' or 'against', got {quota!r}")
        _check_cap(max_per_prompt)
        self.inner = inner if inner is not None else ScoreStrategy("noise_aware")
        self.share, self.quota, self.max_per_prompt = float(share), quota, max_per_prompt
        self.needs_embeddings = self.inner.needs_embeddings
        self.uses_acquired_set = self.inner.uses_acquired_set
        self.needs_lengths = True
        self.name = f"length_aware:{self.inner.name}"
        self.params = {
            "inner": self.inner.name,
            "inner_params": dict(self.inner.params),
            "share": self.share,
            "quota": quota,
            "max_per_prompt": max_per_prompt,
        }

    def residual_pool(self, pool: ProbPool) -> tuple[ProbPool, np.ndarray, np.ndarray, float]:
        """(the pool with length-residual gaps, the model's mean gap, Δ log-length, fitted slope β)."""
        if pool.len_a is None or pool.len_b is None:
            raise StrategyError(
                f"strategy {self.name!r} needs the responses' lengths: pass ProbPool(len_a=..., len_b=...)"
            )
        dlen = length_gap(pool.len_a, pool.len_b)
        gaps = S.reward_gaps(pool.p_members, pool.p_tie)
        residual, slope = length_residual(gaps, dlen)
        rewards_a, rewards_b = pool.rewards_a, pool.rewards_b
        if rewards_a is not None and rewards_b is not None:  # each response's reward less β·log(1 + chars)
            ra, rb = S._members(rewards_a), S._members(rewards_b)
            _, beta = length_residual(ra - rb, dlen)
            rewards_a = ra - beta[0] * np.log1p(np.asarray(pool.len_a, dtype=np.float64))[:, None]
            rewards_b = rb - beta[0] * np.log1p(np.asarray(pool.len_b, dtype=np.float64))[:, None]
        probs = residual_probs(pool.p_members, pool.p_tie, residual)
        res = dataclasses.replace(pool, p_members=probs, rewards_a=rewards_a, rewards_b=rewards_b)
        return res, gaps.mean(axis=1), dlen, float(slope[0])

    def score(self, pool: ProbPool, rng: np.random.Generator) -> np.ndarray:
        return self.inner.score(self.residual_pool(pool)[0], rng)

    def select(self, pool: ProbPool, k: int, rng: np.random.Generator | None = None) -> Selection:
        rng = rng if rng is not None else np.random.default_rng(0)
        res, mean_gap, dlen, slope = self.residual_pool(pool)
        assert pool.len_a is not None and pool.len_b is not None  # residual_pool checked
        decides = length_decides(pool.len_a, pool.len_b)
        rule = follows_length if self.quota == "follows" else against_length
        in_quota = rule(mean_gap, dlen, slope, decides)
        excluded = pool.excluded()
        s = self.inner.score(res, rng)
        n_quota = min(k, int(np.floor(self.share * k + 0.5)))
        picked = top_k(s, n_quota, excluded | ~in_quota, pool.prompt_ids, self.max_per_prompt)
        score_of = {int(i): float(s[i]) for i in picked}
        n_reserved = int(picked.size)
        while picked.size < k:  # the inner strategy fills the rest, the cap holding over the whole batch
            ex = excluded.copy()
            ex[picked] = True
            if self.max_per_prompt is not None and pool.prompt_ids is not None and picked.size:
                ids, counts = np.unique(np.asarray(pool.prompt_ids)[picked], return_counts=True)
                ex |= np.isin(pool.prompt_ids, ids[counts >= self.max_per_prompt])
            more = self.inner.select(dataclasses.replace(res, exclude=ex), k - int(picked.size), rng)
            if not len(more):
                break
            score_of.update(zip(more.indices.tolist(), more.scores.tolist(), strict=True))
            picked = np.concatenate([picked, more.indices]).astype(np.int64)
            if self.max_per_prompt is not None and pool.prompt_ids is not None:
                picked = apply_prompt_cap(picked, pool.prompt_ids, self.max_per_prompt)
            picked = picked[:k]
        scores = np.array([score_of[int(i)] for i in picked], dtype=np.float64)
        info = {"length_slope": slope, "length_quota_picks": n_reserved}
        return Selection(picked, scores, self.name, {**self.params, **info})


#: strategies that wrap an inner one, by spec head
_WRAPPERS: dict[str, Callable[..., Strategy]] = {
    "diverse": DiverseStrategy,
    "balpm": EntropyBatchStrategy,
    "length_aware": LengthAwareStrategy,
}
#: the inner strategy of a wrapper named alone
_DEFAULT_INNER = {"balpm": "bald", "length_aware": "noise_aware"}
_ALIASES = {
    "bal_pm": "balpm",
    "deltaucb": "delta_ucb",
    "noiseaware": "noise_aware",
    "lengthaware": "length_aware",
}


def available_strategies() -> list[str]:
    """Names ``get_strategy`` accepts (``diverse``, ``length_aware`` wrap any other; ``balpm`` wraps a score)."""
    return ["random", *SCORERS, *POOL_SCORERS, "balpm", "diverse", "length_aware"]


def _parse_spec(spec: str) -> tuple[str, str]:
    """(head, inner spec) of a strategy spec: aliases resolved, ``diverse(bald)`` = ``diverse:bald``."""
    spec = spec.strip().lower().replace("-", "_")
    for alias, name in _ALIASES.items():
        if spec == alias or spec.startswith((f"{alias}:", f"{alias}(")):
            spec = name + spec[len(alias) :]
    for wrapper in _WRAPPERS:
        if spec.startswith(f"{wrapper}(") and spec.endswith(")"):
            spec = f"{wrapper}:" + spec[len(wrapper) + 1 : -1]
    head, _, rest = spec.partition(":")
    return head, rest


def get_strategy(spec: str, **params: Any) -> Strategy:
    """Build a strategy from a name or spec string and keyword parameters.

    ``spec``: ``"bald"``, ``"epig"``, ``"diverse"`` (with ``inner=...``), ``"diverse:bald"``,
    ``"diverse(bald)"``, ``"balpm"`` (= ``"balpm:bald"``), ``"balpm:epig"``, ``"length_aware"``
    (= ``"length_aware:noise_aware"``), ``"length_aware:bald"``; wrappers nest
    (``"diverse:diverse:bald"`` is legal if pointless). For a wrapper, ``inner_params`` (a
    dict) go to the inner strategy; other keywords go to the strategy named (``TypeError`` or
    ``ValueError`` on one it does not take). ``-`` and ``_`` are interchangeable
    (``"delta-ucb"``); ``"bal-pm"`` is ``"balpm"``.
    """
    head, rest = _parse_spec(spec)
    spec = f"{head}:{rest}" if rest else head
    if head in _WRAPPERS:
        inner_spec = rest or params.pop("inner", None) or _DEFAULT_INNER.get(head)
        if not inner_spec:
            raise StrategyError(f"{head!r} needs an inner strategy: '{head}:bald' or inner='bald'")
        params.pop("inner", None)
        inner_params = dict(params.pop("inner_params", None) or {})
        inner = inner_spec if isinstance(inner_spec, Strategy) else get_strategy(inner_spec, **inner_params)
        if head == "balpm" and not isinstance(inner, ScoreStrategy):
            raise StrategyError(f"'balpm' wraps a score, not {inner.name!r}: use e.g. 'balpm:bald' or 'balpm:epig'")
        return _WRAPPERS[head](inner, **params)
    if rest:
        raise StrategyError(f"only {', '.join(map(repr, _WRAPPERS))} wrap another strategy; got {spec!r}")
    if head == "random" or head in SCORERS or head in POOL_SCORERS:
        return ScoreStrategy(head, **params)
    raise StrategyError(f"unknown strategy {spec!r}; known: {', '.join(available_strategies())}")


def _wrapper_params(head: str) -> set[str]:
    own = inspect.signature(_WRAPPERS[head]).parameters
    return set(own) - {"inner", "max_per_prompt"}


def configured_strategy(spec: str, params: Mapping[str, Any], max_per_prompt: int | None = None) -> Strategy:
    """A strategy from a spec and a flat set of parameters, each given to the layer that takes it.

    ``[acquisition]`` names parameters without saying which layer of ``diverse:epig`` they are
    for: a wrapper takes the ones it knows (``shortlist``, ``beta`` of ``balpm``), its inner
    strategy the rest. A parameter no layer takes is a ``StrategyError`` naming what it takes.
    """
    head, rest = _parse_spec(spec)
    if head not in _WRAPPERS:
        return get_strategy(spec, max_per_prompt=max_per_prompt, **params)
    own = _wrapper_params(head)
    inner_spec = rest or _DEFAULT_INNER.get(head, "")
    if not inner_spec:
        return get_strategy(spec, max_per_prompt=max_per_prompt, **params)
    inner = configured_strategy(inner_spec, {k: v for k, v in params.items() if k not in own})
    mine = {k: v for k, v in params.items() if k in own}
    return get_strategy(head, inner=inner, max_per_prompt=max_per_prompt, **mine)
