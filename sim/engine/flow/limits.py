"""Rate limiting and load shedding in the fast mode: window arithmetic instead of counters.

express-rate-limit counts a client's requests per tier in fixed windows of ``window``
seconds (``models.rate_limit``): in a window with N requests, the first ``limit`` pass
and N - limit get 429. A session's user sends its tier's requests as a Poisson process
of rate lam to one store (a memory store per process sees 1/P of its HTTP requests,
round robin, but all of its socket requests; a Redis store sees all of them), so a
session of length T has about T / (window + 1/lam) windows (a per-client window starts
at the first request after the previous one ended) of Poisson(lam window) requests,
and a last, shorter one. Expected rejections per window: ``E[(N - limit)+] = m - limit
+ limit F(limit - 1) - m F(limit - 2)`` for N ~ Poisson(m) with CDF F. The rejected share
of a tier is the expected rejections over the expected requests, averaged over the
session-length distribution (200 quantiles). An Artillery virtual user sends its flow's
requests once: the share beyond ``limit`` per store.

Load shedding (``models.circuit_breaker.LoadShedder``) trips when a ``shed_window`` bucket
holds more than ``shed_rps x shed_window`` arrivals: with Poisson arrivals of rate lam per
process the chance per bucket is the Poisson tail; once tripped it sheds for
``shed_duration``.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["excess", "session_share", "flow_share", "quantiles", "trip_probability", "by_age", "poisson_cdf"]


def poisson_cdf(k: int, m):
    """P(N <= k) for N ~ Poisson(m): the regularised upper incomplete gamma Q(k + 1, m)."""
    from scipy.special import gammaincc
    m = np.asarray(m, dtype=float)
    return np.ones_like(m) * 0.0 if k < 0 else gammaincc(k + 1, m)


def excess(m, limit: int):
    """E[(N - limit)+] for N ~ Poisson(m) (arrays)."""
    m = np.asarray(m, dtype=float)
    return np.maximum(m - limit + limit * poisson_cdf(limit - 1, m) - m * poisson_cdf(limit - 2, m), 0.0)


def quantiles(dist, n: int = 200) -> np.ndarray:
    """``n`` equally likely values of a duration distribution (its quantiles at (i + 1/2)/n)."""
    u = (np.arange(n) + 0.5) / n
    if dist.dist == "constant":
        return np.full(n, float(dist.value))
    if dist.dist == "empirical":
        return np.quantile(np.asarray(dist.samples, dtype=float), u)
    from scipy.special import gammaincinv, ndtri
    if dist.dist == "exponential":
        return -dist.mean * np.log1p(-u)
    if dist.dist == "lognormal":
        return np.exp(dist.mu + dist.sigma * ndtri(u))
    if dist.dist == "gamma":
        return gammaincinv(dist.shape, u) * dist.scale
    return dist.low + u * (dist.high - dist.low)


def session_share(lam: float, limit: int, window: float, lengths: np.ndarray, per_client: bool = True) -> float:
    """Share of a session client's requests rejected: rate ``lam`` to one store, ``limit`` per window."""
    if lam <= 0:
        return 0.0
    span = window + (1.0 / lam if per_client else 0.0)
    full = np.floor(lengths / span)
    rest = np.minimum(lengths - full * span, window)
    rejected = full * excess(lam * window, limit) + excess(lam * rest, limit)
    return float(np.sum(rejected) / np.sum(lam * lengths))


def by_age(lam: float, limit: int, window: float, ages: np.ndarray, per_client: bool = True) -> np.ndarray:
    """Share rejected of the requests of a session at each age.

    A session's windows follow each other every window + 1/lam (a per-client window opens
    at the first request after the previous one closed), so at age u it is at phase
    ``x = u mod (window + 1/lam)`` of its current window, after Poisson(lam x) requests:
    rejected iff at least ``limit`` came before (none in the gap). Weighting the ages by
    the active sessions keeps the survivors' bias: short sessions never reach the limit."""
    if lam <= 0:
        return np.zeros_like(ages)
    span = window + (1.0 / lam if per_client else 0.0)
    phase = np.mod(ages, span)
    return np.where(phase < window, 1.0 - poisson_cdf(limit - 1, lam * phase), 0.0)


def flow_share(count: float, limit: int, stores: int) -> float:
    """Share of one virtual user's ``count`` requests of a tier beyond ``limit`` per store
    (round robin over ``stores`` memory stores, or 1 shared store)."""
    if count <= 0:
        return 0.0
    return max(0.0, count - limit * min(stores, count)) / count


def trip_probability(lam, cap: float, window: float):
    """P(a bucket of ``window`` seconds holds more than ``cap`` arrivals) at Poisson rate ``lam``."""
    if math.isinf(cap):
        return np.zeros_like(np.asarray(lam, dtype=float))
    return 1.0 - poisson_cdf(math.floor(cap), np.asarray(lam, dtype=float) * window)
