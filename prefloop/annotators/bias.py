"""Position bias: does an annotator pick the response shown first more often than chance?"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["binomial_test", "position_bias"]


def _log_pmf(k: np.ndarray, n: int, p: float) -> np.ndarray:
    lg = np.vectorize(math.lgamma)
    with np.errstate(divide="ignore"):
        return lg(n + 1) - lg(k + 1) - lg(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def binomial_test(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test: P(an outcome at most as likely as ``k`` successes in ``n``).

    The same rule as ``scipy.stats.binomtest(k, n, p).pvalue`` (outcomes whose probability is
    within a relative 1e-7 of the observed one count as "as likely").
    """
    if n == 0:
        return 1.0
    if not 0 < p < 1:
        raise ValueError("p must be strictly between 0 and 1")
    log_pmf = _log_pmf(np.arange(n + 1), n, p)
    observed = log_pmf[k]
    mask = log_pmf <= observed + math.log1p(1e-7)
    return float(min(1.0, np.exp(log_pmf[mask]).sum()))


def position_bias(picked_first: np.ndarray) -> dict[str, float | int] | None:
    """Share of decisive picks that went to the response shown first, with a binomial test
    against 0.5. ``picked_first`` holds one bool per decisive (a/b) label whose on-screen order
    is known; None when there is none."""
    picked_first = np.asarray(picked_first, dtype=bool)
    n = int(picked_first.size)
    if n == 0:
        return None
    k = int(picked_first.sum())
    return {"first_shown_share": k / n, "n": n, "p_value": binomial_test(k, n, 0.5)}
