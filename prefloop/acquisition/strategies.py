"""Acquisition strategies by name: score → batch, composable by wrapping.

A strategy turns a ``ProbPool`` (what the ensemble said about the unlabelled pairs) into a
``Selection`` of ``k`` pool indices. ``name`` and ``params`` describe it completely and are
recorded on the tasks it creates, so ``get_strategy(s.name, **s.params)`` rebuilds it.

    get_strategy("bald")
    get_strategy("diverse", inner="bald", shortlist=2000)
    get_strategy("diverse:bald")              # the same, from a spec string
    get_strategy("diverse:margin", method="kmeanspp", max_per_prompt=2)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prefloop.acquisition import scores as S
from prefloop.acquisition.batch import diverse_select, exclusion_mask, shortlist, top_k

__all__ = [
    "SCORERS",
    "DiverseStrategy",
    "ProbPool",
    "ScoreStrategy",
    "Selection",
    "Strategy",
    "available_strategies",
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

    def __post_init__(self) -> None:
        p = np.asarray(self.p_members)
        self.p_members = p[:, None] if p.ndim == 1 else p
        n = self.n
        for name in ("p_tie", "embeddings", "prompt_ids"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"ProbPool.{name} has {len(value)} rows but p_members has {n}")

    @property
    def n(self) -> int:
        return int(self.p_members.shape[0])

    def excluded(self) -> np.ndarray:
        return exclusion_mask(self.n, self.exclude)


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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, params={self.params!r})"

    @abstractmethod
    def score(self, pool: ProbPool, rng: np.random.Generator) -> np.ndarray:
        """One score per pool pair; higher = more worth labelling."""

    @abstractmethod
    def select(self, pool: ProbPool, k: int, rng: np.random.Generator | None = None) -> Selection:
        """The ``k`` pairs to label next (fewer when the pool runs out); exclusions always hold."""


class ScoreStrategy(Strategy):
    """Top-k of one score function, with an optional per-prompt cap."""

    def __init__(self, name: str, max_per_prompt: int | None = None) -> None:
        if name != "random" and name not in SCORERS:
            raise ValueError(f"unknown score {name!r}; known: {', '.join(available_strategies())}")
        self.name = name
        self.max_per_prompt = max_per_prompt
        self.params = {} if max_per_prompt is None else {"max_per_prompt": max_per_prompt}

    def score(self, pool: ProbPool, rng: np.random.Generator) -> np.ndarray:
        if self.name == "random":
            return S.random_scores(pool.n, rng)
        return SCORERS[self.name](pool.p_members, pool.p_tie)

    def select(self, pool: ProbPool, k: int, rng: np.random.Generator | None = None) -> Selection:
        rng = rng if rng is not None else np.random.default_rng(0)
        s = self.score(pool, rng)
        idx = top_k(s, k, pool.excluded(), pool.prompt_ids, self.max_per_prompt)
        return Selection(idx, s[idx], self.name, dict(self.params))


class DiverseStrategy(Strategy):
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
            raise ValueError(f"unknown diversity method {method!r}; use 'kcenter' or 'kmeanspp'")
        self.inner = inner
        self.shortlist = shortlist
        self.shortlist_factor = shortlist_factor
        self.method = method
        self.score_weight = score_weight
        self.max_per_prompt = max_per_prompt
        self.name = f"diverse:{inner.name}"
        self.params = {
            "inner": inner.name,
            "inner_params": dict(inner.params),
            "shortlist": shortlist,
            "shortlist_factor": shortlist_factor,
            "method": method,
            "score_weight": score_weight,
            "max_per_prompt": max_per_prompt,
        }

    def score(self, pool: ProbPool, rng: np.random.Generator) -> np.ndarray:
        return self.inner.score(pool, rng)

    def select(self, pool: ProbPool, k: int, rng: np.random.Generator | None = None) -> Selection:
        if pool.embeddings is None:
            raise ValueError(f"strategy {self.name!r} needs pair embeddings: pass ProbPool(embeddings=...)")
        rng = rng if rng is not None else np.random.default_rng(0)
        s = self.score(pool, rng)
        m = self.shortlist if self.shortlist is not None else int(np.ceil(self.shortlist_factor * k))
        cand = shortlist(s, max(m, k), pool.excluded())
        idx = diverse_select(pool.embeddings, cand, k, s, self.method,  # type: ignore[arg-type]
                             self.score_weight, pool.prompt_ids, self.max_per_prompt, rng)
        return Selection(idx, s[idx], self.name, dict(self.params))


def available_strategies() -> list[str]:
    """Names ``get_strategy`` accepts (``diverse`` wraps any of the others)."""
    return ["random", *SCORERS, "diverse"]


def get_strategy(spec: str, **params: Any) -> Strategy:
    """Build a strategy from a name or spec string and keyword parameters.

    ``spec``: ``"bald"``, ``"diverse"`` (with ``inner=...``), ``"diverse:bald"``,
    ``"diverse(bald)"``; wrappers nest (``"diverse:diverse:bald"`` is legal if pointless).
    For ``diverse``, ``inner_params`` (a dict) go to the inner strategy.
    """
    spec = spec.strip().lower().replace("-", "_")
    if spec.startswith("diverse(") and spec.endswith(")"):
        spec = "diverse:" + spec[len("diverse("):-1]
    head, _, rest = spec.partition(":")
    if head == "diverse":
        inner_spec = rest or params.pop("inner", None)
        if not inner_spec:
            raise ValueError("'diverse' needs an inner strategy: 'diverse:bald' or inner='bald'")
        params.pop("inner", None)
        inner_params = dict(params.pop("inner_params", None) or {})
        inner = inner_spec if isinstance(inner_spec, Strategy) else get_strategy(inner_spec, **inner_params)
        return DiverseStrategy(inner, **params)
    if rest:
        raise ValueError(f"only 'diverse' wraps another strategy; got {spec!r}")
    if head == "random" or head in SCORERS:
        return ScoreStrategy(head, **params)
    raise ValueError(f"unknown strategy {spec!r}; known: {', '.join(available_strategies())}")
