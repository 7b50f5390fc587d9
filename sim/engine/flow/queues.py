"""Queueing closed forms on numpy arrays (one value per step and process).

* ``erlang_c(c, a)``: P(wait) in M/M/c at offered load ``a`` (Erlang B recursion).
* ``loop_wait``: the event loop's mean wait and P(wait): Pollaczek-Khinchine for one
  thread (M/G/1, exact mean for Poisson arrivals), Allen-Cunneen for ``c`` threads
  (Erlang C scaled by (1 + cs^2)/2). Wake-ups: a task that finds the loop idle (probability
  1 - rho, PASTA) pays ``wakeup_cpu``, so rho = (rho0 + lam w) / (1 + lam w).
* ``mmcd``: M/M/c+D (the pool: ``c`` connections, deterministic patience D = the acquire
  timeout), the level-crossing solution of ``capsim.theory.mmcd`` on arrays; D = inf is
  Erlang C.
"""
from __future__ import annotations

import numpy as np

__all__ = ["erlang_c", "loop_wait", "mmcd", "RHO_CAP", "lindley_mean_wait", "SmoothArrivals"]

RHO_CAP = 0.995          # the stochastic part is evaluated at most here; the rest is a fluid backlog


def erlang_c(c: int, a: np.ndarray) -> np.ndarray:
    """P(wait > 0) in M/M/c at offered load ``a`` (< c; values >= c give 1)."""
    a = np.asarray(a, dtype=float)
    b = np.ones_like(a)
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = np.minimum(a / c, RHO_CAP)
    return np.where(a >= c, 1.0, b / (1.0 - rho + rho * b))


def loop_wait(lam: np.ndarray, m1: np.ndarray, m2: np.ndarray, threads: int, wakeup: float, ca2=1.0,
              smooth=None):
    """(rho, mean wait, P(wait), work rate) of a FIFO loop with ``threads`` servers.

    ``lam``: tasks per second, ``m1``: work seconds per second (sum lam E[S]), ``m2``:
    sum lam E[S^2]; ``wakeup``: wall seconds added to a task that finds the loop idle;
    ``ca2``: squared coefficient of variation of the task inter-arrival times (1: Poisson;
    round robin over n processes makes a request stream Erlang-n, 1/n): the Poisson wait
    is scaled by ``smooth(rho, ca2)`` (``SmoothArrivals``), else by Kraemer and
    Langenbach-Belz's GI/G/c factor ``(ca2 + cs2)/(1 + cs2) g``.
    """
    if wakeup:
        lw = lam * wakeup
        idle_share = 1.0 - np.minimum((m1 + lw) / (1.0 + lw), RHO_CAP * threads) / threads
        m2 = m2 + lam * idle_share * (2.0 * np.divide(m1, lam, out=np.zeros_like(m1), where=lam > 0) * wakeup
                                      + wakeup * wakeup)
        m1 = m1 + lw * idle_share
    rho = np.minimum(m1 / threads, RHO_CAP)
    if threads == 1:
        wait = m2 / (2.0 * (1.0 - rho))
        p_wait = rho
    else:
        mean_s = np.divide(m1, lam, out=np.zeros_like(m1), where=lam > 0)
        es2 = np.divide(m2, lam, out=np.zeros_like(m2), where=lam > 0)
        cs2 = np.divide(es2, mean_s * mean_s, out=np.ones_like(es2), where=mean_s > 0) - 1.0
        p_wait = erlang_c(threads, rho * threads)
        gap = threads - rho * threads                    # c - a: spare servers (work seconds per second)
        wait = np.divide(p_wait * (1.0 + cs2) / 2.0 * mean_s, gap, out=np.zeros_like(p_wait), where=gap > 0)
    ca2 = np.asarray(ca2, dtype=float)
    if callable(smooth):
        wait = wait * smooth(rho, ca2)
    elif np.any(ca2 != 1.0):
        mean_s = np.divide(m1, lam, out=np.zeros_like(m1), where=lam > 0)
        es2 = np.divide(m2, lam, out=np.zeros_like(m2), where=lam > 0)
        cs2 = np.divide(es2, mean_s * mean_s, out=np.ones_like(es2), where=mean_s > 0) - 1.0
        wait = wait * _klb(np.maximum(rho, 1e-9), ca2, cs2)
    return rho, wait, p_wait, m1


class SmoothArrivals:
    """The wait of smooth (round-robin) arrivals relative to Poisson ones, per operating point.

    ``factor(rho, ca2, kinds)``: Lindley's GI/G/1 mean wait with interarrival SCV ``ca2`` over
    the Poisson one, for the task mix ``kinds`` = (rates, means, second moments); memoised on
    rho and ca2 rounded to 0.02 and 0.05 (one run's memo: results never depend on other runs).
    Beyond rho 0.6 (outside the validity limit, slow to converge) Kraemer and Langenbach-Belz."""

    def __init__(self):
        self.memo: dict = {}

    def factor(self, rho: float, ca2: float, kinds) -> float:
        if ca2 >= 0.999 or rho <= 1e-6:
            return 1.0
        key = (round(rho / 0.02), round(ca2 / 0.05))
        f = self.memo.get(key)
        if f is None:
            r, c = max(key[0] * 0.02, 0.01), max(key[1] * 0.05, 0.02)
            rates, means, second = kinds
            rates = np.asarray(rates, dtype=float)
            lam = float(rates.sum())
            if r > 0.6 or lam <= 0:
                f = float(_klb(np.array(r), np.array(c), np.array(float(np.dot(rates, second) / lam /
                                                                          max(np.dot(rates, means) / lam, 1e-300) ** 2 - 1))))
            else:
                scale = r / max(float(np.dot(rates, means)), 1e-300)    # the task mix at utilisation r
                smooth = lindley_mean_wait(lam, c, rates, np.asarray(means) * scale, np.asarray(second) * scale ** 2)
                poisson = lindley_mean_wait(lam, 1.0, rates, np.asarray(means) * scale, np.asarray(second) * scale ** 2)
                f = smooth / poisson if poisson > 0 else 1.0
            self.memo[key] = f
        return f


def _klb(r, ca2, cs2):
    cs2 = np.maximum(cs2, 0.0)
    low = np.exp(-2 * (1 - r) * (1 - ca2) ** 2 / (3 * r * np.maximum(ca2 + cs2, 1e-9)))
    high = np.exp(-(1 - r) * (ca2 - 1) / np.maximum(ca2 + 4 * cs2, 1e-9))
    return (ca2 + cs2) / (1 + cs2) * np.where(ca2 < 1, low, high)


def mmcd(lam: np.ndarray, mu: np.ndarray, c: int, patience: float) -> dict:
    """M/M/c+D for arrays ``lam``, ``mu`` (see ``capsim.theory.mmcd``); ``patience`` inf: no abandonment."""
    lam = np.maximum(np.asarray(lam, dtype=float), 1e-12)
    mu = np.asarray(mu, dtype=float)
    a = np.maximum(lam / mu, 1e-9)
    terms = np.ones_like(a)                  # sum_{k<c} pi_k / pi_{c-1}
    t = np.ones_like(a)
    for k in range(c - 1, 0, -1):
        t = t * k / a
        terms = terms + t
    b = lam - c * mu
    if np.isinf(patience):
        stable = b < 0
        bb = np.where(stable, b, -1.0)
        i_low = -lam / bb                    # integral of v/pi_{c-1} over [0, inf)
        iy_low = lam / (bb * bb)
        z = terms + i_low
        p_wait = np.where(stable, i_low / z, 1.0)
        mean_wait = np.where(stable, iy_low / z, np.inf)
        p_abandon = np.zeros_like(a)
        return {"p_wait": p_wait, "p_abandon": p_abandon, "mean_wait_served": mean_wait,
                "p_wait_served": p_wait}
    D = float(patience)
    e = np.exp(np.minimum(b * D, 700.0))
    small = np.abs(b) < 1e-12
    bs = np.where(small, 1.0, b)
    i_low = np.where(small, lam * D, lam * (e - 1.0) / bs)
    iy_low = np.where(small, lam * D * D / 2, lam * (D * e / bs - (e - 1.0) / (bs * bs)))
    i_high = lam * e / (c * mu)
    z = terms + i_low + i_high
    p_abandon = i_high / z
    p_served = 1.0 - p_abandon
    return {"p_wait": (i_low + i_high) / z, "p_abandon": p_abandon,
            "mean_wait_served": (iy_low / z) / np.maximum(p_served, 1e-300),
            "p_wait_served": (i_low / z) / np.maximum(p_served, 1e-300)}


def _gamma_pdf(x, k: float, theta: float):
    from scipy.special import gammaln
    k = min(k, 1e4)
    return np.exp((k - 1) * np.log(x / theta) - x / theta - gammaln(k)) / theta


def lindley_mean_wait(lam: float, ca2: float, rates, means, second, points: int = 2048, tol: float = 1e-4) -> float:
    """Mean wait of a GI/G/1 queue by Lindley's recursion on a grid (W' = max(0, W + S - A)).

    Interarrival times: gamma with mean 1/lam and squared coefficient of variation ``ca2``
    (1: Poisson); service: a mixture of gammas, one per task kind (``rates`` as weights,
    ``means`` and ``second`` moments). Used for the ratio to the Poisson case: two moments
    cannot tell that smooth arrivals rarely meet a short task still running."""
    from capsim.engine.flow.arrivals import convolve as fftconvolve
    rates, means, second = (np.asarray(x, dtype=float) for x in (rates, means, second))
    keep = (rates > 0) & (means > 0)
    rates, means, second = rates[keep], means[keep], second[keep]
    if not rates.size or lam <= 0:
        return 0.0
    w = rates / rates.sum()
    var = np.maximum(second - means ** 2, means ** 2 * 1e-4)
    top = max(float(np.max(means + 6 * np.sqrt(var))), 6.0 / lam * (1 + ca2)) * 2
    dx = top / points
    x = (np.arange(points) + 0.5) * dx
    dens = np.zeros(points)
    for wi, m, v in zip(w, means, var):
        dens += wi * _gamma_pdf(x, m * m / v, v / m)
    s = dens / max(dens.sum(), 1e-300)
    ka = 1.0 / max(ca2, 1e-3)
    a = _gamma_pdf(x, ka, 1.0 / (lam * ka))
    a = a / max(a.sum(), 1e-300)
    inc = fftconvolve(s, a[::-1])                  # S - A on offsets -(points-1) .. points-1 (in cells)
    inc = np.maximum(inc, 0.0)
    wd = np.zeros(points)
    wd[0] = 1.0
    mean = 0.0
    for _ in range(2000):
        nxt = fftconvolve(wd, inc)                 # offsets -(points-1) .. 2 points - 2
        out = np.maximum(nxt[points - 1: 2 * points - 1], 0.0)
        out[0] += float(np.maximum(nxt[:points - 1], 0.0).sum())
        out[-1] += float(np.maximum(nxt[2 * points - 1:], 0.0).sum())
        out /= out.sum()
        new = float(out @ (np.arange(points) * dx))
        wd = out
        if abs(new - mean) <= tol * max(new, dx):
            break
        mean = new
    return new
