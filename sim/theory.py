"""Queueing-theory formulas the simulator is validated against (plain Python, no simulator).

Notation: arrival rate ``lam`` (1/s), service rate ``mu`` (1/s, mean service 1/mu),
``c`` servers, offered load ``a = lam / mu`` (Erlangs), utilisation ``rho = a / c``.

* M/M/1 (FCFS): sojourn time T ~ Exponential(mu - lam): E[T] = 1/(mu - lam),
  q-quantile -ln(1 - q)/(mu - lam) (p95 = ln 20/(mu - lam)); E[N] = rho/(1 - rho).
* M/M/c: Erlang C probability of waiting and mean wait E[W] = C/(c mu - lam).
* M/M/c+D: M/M/c FCFS where a waiting customer abandons after a deterministic
  patience D. See ``mmcd`` for the level-crossing derivation, and ``simulate_mmcd``
  for the tiny independent brute-force check of it.
* Caches under independent Zipf requests: LRU of C keys by Che's approximation
  (characteristic time T with sum_i (1 - e^{-p_i T}) = C; hit = sum_i p_i (1 - e^{-p_i T}));
  a TTL cache filled on a miss: key i hits with probability lam_i T / (1 + lam_i T).
"""
from __future__ import annotations

import math
import random

__all__ = ["mm1_mean_sojourn", "mm1_mean_in_system", "mm1_sojourn_quantile",
           "erlang_c", "mmc_mean_wait", "mmcd", "simulate_mmcd", "replication_check",
           "zipf_probabilities", "che_hit_rate", "ttl_hit_rate"]


# -- M/M/1 --------------------------------------------------------------------------
def mm1_mean_sojourn(lam: float, mu: float) -> float:
    """E[T] = 1/(mu - lam) (requires lam < mu)."""
    if not lam < mu:
        raise ValueError(f"M/M/1 needs lam < mu, got lam={lam}, mu={mu}")
    return 1.0 / (mu - lam)


def mm1_mean_in_system(lam: float, mu: float) -> float:
    """E[N] = rho/(1 - rho) = lam E[T] (Little)."""
    rho = lam / mu
    if not rho < 1:
        raise ValueError(f"M/M/1 needs rho < 1, got {rho}")
    return rho / (1.0 - rho)


def mm1_sojourn_quantile(lam: float, mu: float, q: float) -> float:
    """FCFS M/M/1 sojourn is Exponential(mu - lam): quantile -ln(1 - q)/(mu - lam)."""
    return -math.log1p(-q) / (mu - lam)


# -- M/M/c (Erlang C) ---------------------------------------------------------------
def erlang_c(c: int, a: float) -> float:
    """P(wait > 0) in M/M/c with offered load a = lam/mu (< c), computed stably via Erlang B."""
    if not a < c:
        raise ValueError(f"Erlang C needs a < c, got a={a}, c={c}")
    b = 1.0                                   # Erlang B recursion: B(0) = 1
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def mmc_mean_wait(lam: float, mu: float, c: int) -> float:
    """E[W] (time in queue, all customers) = C(c, a)/(c mu - lam)."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


# -- M/M/c+D ------------------------------------------------------------------------
def mmcd(lam: float, mu: float, c: int, D: float) -> dict:
    """M/M/c FCFS with deterministic patience D (a customer whose wait would exceed D leaves at D).

    Level crossing on the virtual waiting time V(t) (the wait an arrival at t would face).
    With FCFS and deterministic patience an arrival knows on arrival whether it will be
    served: it joins (and is served after V) iff V < D, otherwise it waits D and leaves.
    V = 0 while fewer than c servers are busy; with k < c busy the busy count is a
    birth-death chain, so pi_k ~ a^k/k!. When all c are busy, V falls at slope 1, and each
    joining arrival pushes it up by an Exp(c mu) amount (the extra inter-departure time).
    Down-crossings of level y > 0 (rate v(y)) equal up-crossings:

        v(y) = lam pi_{c-1} e^{-c mu y} + lam * int_0^{min(y, D)} v(x) e^{-c mu (y - x)} dx,

    whose solution is v(y) = lam pi_{c-1} exp(lam min(y, D) - c mu y). Normalise by
    sum_{k<c} pi_k + int_0^inf v = 1. By PASTA, for arrivals:
    P(wait > 0) = int v; P(abandon) = int_D^inf v = lam pi_{c-1} e^{(lam - c mu) D}/(c mu);
    E[wait], all arrivals = int_0^D y v(y) dy + D P(abandon) (abandoners wait exactly D);
    E[wait | served] = int_0^D y v(y) dy / P(served).
    """
    a, b = lam / mu, lam - c * mu
    # unnormalised pi_k (k < c), scaled so that pi_{c-1} = 1 to avoid overflow
    terms = [1.0]
    for k in range(c - 1, 0, -1):             # pi_{k-1} = pi_k * k / a
        terms.append(terms[-1] * k / a)
    p_idle_states = sum(terms)                # sum_{k<c} pi_k / pi_{c-1}
    e = math.exp(b * D)
    # integrals of v/pi_{c-1} over [0, D] and [D, inf), and of y v/pi_{c-1} over [0, D]
    if abs(b) < 1e-12:
        i_low, iy_low = lam * D, lam * D * D / 2
    else:
        i_low = lam * (e - 1.0) / b
        iy_low = lam * (D * e / b - (e - 1.0) / (b * b))
    i_high = lam * e / (c * mu)
    z = p_idle_states + i_low + i_high        # 1/pi_{c-1}
    p_wait = (i_low + i_high) / z
    p_abandon = i_high / z
    wait_served_part = iy_low / z             # E[wait; served]
    mean_wait = wait_served_part + D * p_abandon
    p_served = 1.0 - p_abandon
    return {"p_wait": p_wait, "p_abandon": p_abandon, "p_served": p_served,
            "mean_wait": mean_wait, "mean_wait_served": wait_served_part / p_served,
            "mean_sojourn": mean_wait + p_served / mu,
            "throughput": lam * p_served, "busy_servers": lam * p_served / mu}


def simulate_mmcd(lam: float, mu: float, c: int, D: float, n: int = 200_000,
                  seed: int = 12345, warm: int = 10_000) -> dict:
    """Brute force, independent of the simulator: FCFS c servers via the Kiefer-Wolfowitz
    recursion (an arrival's wait is until the earliest server frees); a customer whose wait
    would exceed D leaves after D without service. Returns the same keys as ``mmcd``."""
    import heapq
    rng = random.Random(seed)
    free = [0.0] * c
    t = 0.0
    waited = abandoned = waits = sojourn = 0.0
    count = 0
    for i in range(n + warm):
        t += rng.expovariate(lam)
        w = free[0] - t
        if w < 0:
            w = 0.0
        s = rng.expovariate(mu)
        if w > D:
            ab, wt, soj = 1, D, D
        else:
            heapq.heapreplace(free, t + w + s)
            ab, wt, soj = 0, w, w + s
        if i >= warm:
            count += 1
            abandoned += ab
            waited += w > 0
            waits += wt
            sojourn += soj
    return {"p_wait": waited / count, "p_abandon": abandoned / count,
            "mean_wait": waits / count, "mean_sojourn": sojourn / count}


# -- statistics helper ------------------------------------------------------------------
def replication_check(values, theory: float, k: float = 4.0, floor: float = 0.0) -> tuple[bool, float, float]:
    """(ok, mean, tolerance): the mean of R independent replications is within
    max(k * s/sqrt(R), floor) of ``theory`` (s: sample standard deviation). With k = 4 and
    R >= 5 a correct simulator fails this with probability below ~1-2% per check (Student t
    with R - 1 degrees of freedom); ``floor`` covers estimator bias (histogram quantile
    error, finite warm-up) when the replications happen to agree very closely."""
    xs = list(values)
    r = len(xs)
    mean = sum(xs) / r
    s = math.sqrt(sum((x - mean) ** 2 for x in xs) / (r - 1)) if r > 1 else float("inf")
    tol = max(k * s / math.sqrt(r), floor)
    return abs(mean - theory) < tol, mean, tol


# -- caches ----------------------------------------------------------------------------
def zipf_probabilities(n: int, s: float):
    import numpy as np
    w = np.arange(1, n + 1, dtype=float) ** -s
    return w / w.sum()


def che_hit_rate(n: int, s: float, c: int) -> float:
    """LRU hit rate of ``c`` slots over ``n`` Zipf(``s``) keys (Che's approximation)."""
    import numpy as np
    from scipy.optimize import brentq
    p = zipf_probabilities(n, s)
    t = brentq(lambda t: np.sum(-np.expm1(-p * t)) - c, 0.0, 1e12)
    return float(np.sum(p * -np.expm1(-p * t)))


def ttl_hit_rate(n: int, s: float, lam: float, ttl: float) -> float:
    """Hit rate of an unbounded TTL cache (TTL set on the filling miss), Poisson requests."""
    import numpy as np
    x = lam * zipf_probabilities(n, s) * ttl
    return float(np.sum(zipf_probabilities(n, s) * x / (1 + x)))
