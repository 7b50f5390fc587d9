"""Expected arrivals of the fast mode: cumulative expected requests on the step grid.

Sessions: starts are a non-homogeneous Poisson process (the same start rate as
``models.sources.SessionSource``: ``peak_users / mean(session_length) x curve[hour] /
max(curve)`` x weekend x events), so the users active at t are M/G/inf: each start stays
for its session length L. Over step k the users' seconds are ``sum_j R_j K[k - j]`` with
``R_j`` the expected starts in step j (placed at its middle) and ``K`` the integrated
survival ``G(d) = E[min(L, d)]`` differenced over the step; requests = ``request_rate``
x those seconds. Open-loop sources: the exact integral of their piecewise-linear rate.
A flow issues its endpoints one after another: each arrival brings ``len(flow)`` requests.
Between grid points the cumulative counts are interpolated linearly (a constant rate
within a step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from capsim.models.distributions import Constant, Exponential, Uniform
from capsim.models.workload import Calendar

__all__ = ["Source", "Arrivals", "integrated_survival", "survival", "convolve"]


def convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full linear convolution by FFT (numpy only: scipy.signal takes seconds to import)."""
    n = len(a) + len(b) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(a, size) * np.fft.rfft(b, size), size)[:n]


def survival(dist, x: np.ndarray) -> np.ndarray:
    """P(L > x) of a session-length distribution (closed forms with scipy.special)."""
    x = np.asarray(x, dtype=float)
    if isinstance(dist, Constant):
        return (x < dist.value).astype(float)
    if isinstance(dist, Exponential):
        return np.exp(-x / dist.mean)
    if isinstance(dist, Uniform):
        if dist.high == dist.low:
            return (x < dist.low).astype(float)
        return np.clip((dist.high - x) / (dist.high - dist.low), 0.0, 1.0)
    from scipy.special import erfc, gammaincc
    if dist.dist == "lognormal":
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(x, 0.0)) - dist.mu) / (dist.sigma * math.sqrt(2.0))
        return 0.5 * erfc(z)
    if dist.dist == "gamma":
        return gammaincc(dist.shape, np.maximum(x, 0.0) / dist.scale)
    values = np.sort(np.asarray(dist.samples, dtype=float))          # empirical
    return 1.0 - np.searchsorted(values, x, side="right") / len(values)


def integrated_survival(dist, d: np.ndarray, horizon: float) -> np.ndarray:
    """G(d) = E[min(L, d)] = integral of the survival from 0 to d (exact where it has a form)."""
    d = np.asarray(d, dtype=float)
    if isinstance(dist, Constant):
        return np.minimum(d, dist.value)
    if isinstance(dist, Exponential):
        return dist.mean * -np.expm1(-d / dist.mean)
    if isinstance(dist, Uniform):
        lo, hi = dist.low, dist.high
        if hi == lo:
            return np.minimum(d, lo)
        inside = lo + ((d - lo) - (d - lo) ** 2 / (2 * (hi - lo)))
        return np.where(d <= lo, d, np.where(d >= hi, dist.mean, inside))
    from scipy.integrate import cumulative_trapezoid
    top = max(float(d.max(initial=0.0)), 1.0)
    grid = np.linspace(0.0, top, int(min(max(top, 1.0) * 4, 2_000_000)) + 2)
    g = cumulative_trapezoid(survival(dist, grid), grid, initial=0.0)
    return np.interp(d, grid, g)


@dataclass
class Source:
    """One stream of requests: cumulative expected requests at the grid points and its endpoint mix.

    ``client``: "session" (a session's user), "flow" (an Artillery virtual user) or None
    (open loop without a flow: no client, never rate limited)."""
    name: str
    cum: np.ndarray          # expected requests in [0, k h], k = 0..n
    mix: np.ndarray          # share of each endpoint (sums to 1)
    client: str | None
    flow_counts: np.ndarray | None = None   # requests per endpoint of one flow

    def between(self, a: float, b: float, h: float) -> float:
        return _at(self.cum, b, h) - _at(self.cum, a, h)


def _at(cum: np.ndarray, t: float, h: float) -> float:
    x = t / h
    k = min(int(x), len(cum) - 2)
    return float(cum[k] + (x - k) * (cum[k + 1] - cum[k]))


class Arrivals:
    """Every source of a scenario's workload on the grid ``0, h, 2h, ...`` up to the horizon."""

    def __init__(self, workload, horizon: float, h: float):
        self.h = h
        self.n = int(math.ceil(horizon / h - 1e-9)) + 1
        self.grid = np.arange(self.n + 1) * h
        names = list(workload.endpoints)
        self.names = names
        self.sources: list[Source] = []
        self.active = np.zeros(self.n + 1)          # sessions active at the grid points
        self.starts_cum = np.zeros(self.n + 1)      # session starts up to the grid points
        self.sessions = workload.sessions
        self._oldest = None
        if workload.sessions is not None:
            self._sessions(workload, horizon)
        for i, ol in enumerate(workload.open_loop):
            self.sources.append(self._open_loop(ol, workload.endpoints, i))

    # -- sessions ------------------------------------------------------------------------
    def _start_rate_cum(self, workload) -> np.ndarray:
        """Expected session starts up to each grid point (exact: the rate is piecewise constant)."""
        ss = workload.sessions
        cal = Calendar(workload.start, ss.events)
        curve = ss.curve
        top = max(curve)
        base = ss.peak_users / ss.session_length.mean
        t_end, t, total = self.grid[-1], 0.0, 0.0
        knots, cums = [0.0], [0.0]
        while t < t_end:
            hour, weekend, t_hour = cal.hour_and_weekend(t)
            ev, t_ev = cal.events_at(t)
            r = base * curve[hour] / top * (ss.weekend_multiplier if weekend else 1.0) * ev
            nxt = min(t_hour, t_ev, t_end)
            total += r * (nxt - t)
            t = nxt
            knots.append(t)
            cums.append(total)
        return np.interp(self.grid, knots, cums)

    def _sessions(self, workload, horizon: float) -> None:
        ss, h = workload.sessions, self.h
        self.starts_cum = self._start_rate_cum(workload)
        starts = np.diff(self.starts_cum)                       # R_j, expected starts in step j
        lags = np.arange(len(starts) + 1)
        g = integrated_survival(ss.session_length, np.maximum(lags - 0.5, 0.0) * h, horizon)
        g_next = integrated_survival(ss.session_length, (lags + 0.5) * h, horizon)
        kernel = g_next - g                                      # user-seconds in step j + d of one start in j
        kernel[0] = integrated_survival(ss.session_length, np.array([0.5 * h]), horizon)[0]
        user_seconds = convolve(starts, kernel[:len(starts)])[:len(starts)]
        user_seconds = np.maximum(user_seconds, 0.0)
        alive = survival(ss.session_length, (lags[1:] - 0.5) * h)   # active at a grid point from a start a step earlier
        self.active[1:] = np.maximum(convolve(starts, alive)[:len(starts)], 0.0)
        self.user_seconds_cum = np.concatenate([[0.0], np.cumsum(user_seconds)])
        weights = np.array([e.weight for e in workload.endpoints.values()], dtype=float)
        self.sources.append(Source("sessions", ss.request_rate * self.user_seconds_cum, weights / weights.sum(),
                                   "session"))

    def ages(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(ages, expected sessions of each age) of the sessions active at ``t``: the starts of each
        earlier step still on (the step's middle as their start), back to where few survive."""
        k = min(int(t / self.h), self.n - 1)
        if self._oldest is None:
            dist = self.sessions.session_length
            lags = np.arange(self.n + 1) * self.h
            alive = survival(dist, lags)
            self._oldest = int(np.searchsorted(-alive, -1e-4)) + 1
        j = np.arange(max(0, k - self._oldest), k + 1)
        ages = t - (j + 0.5) * self.h
        keep = ages > 0
        ages = ages[keep]
        return ages, np.diff(self.starts_cum)[j[keep]] * survival(self.sessions.session_length, ages)

    def active_at(self, t: float) -> float:
        """Expected sessions active at ``t``."""
        return _at(self.active, t, self.h)

    def starts(self, a: float, b: float) -> float:
        return _at(self.starts_cum, b, self.h) - _at(self.starts_cum, a, self.h)

    # -- open loop -----------------------------------------------------------------------
    def _open_loop(self, ol, endpoints, index: int) -> Source:
        grid = self.grid
        cum = np.zeros_like(grid)
        for t0, t1, r0, r1 in ol.segments():
            if t1 == math.inf:
                span = np.clip(grid - t0, 0.0, None)
                cum += r0 * span
                continue
            x = np.clip(grid, t0, t1) - t0
            slope = (r1 - r0) / (t1 - t0) if t1 > t0 else 0.0
            cum += r0 * x + 0.5 * slope * x * x
        names = self.names
        if ol.flow:
            counts = np.array([ol.flow.count(n) for n in names], dtype=float)
            return Source(f"open_loop.{index}.{ol.name}", cum * len(ol.flow), counts / counts.sum(), "flow", counts)
        weights = ol.mix if ol.mix is not None else {n: e.weight for n, e in endpoints.items()}
        w = np.array([float(weights.get(n, 0.0)) for n in names])
        return Source(f"open_loop.{index}.{ol.name}", cum, w / w.sum(), None)
