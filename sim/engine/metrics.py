"""Metrics: per-request outcomes and latencies, a time series, and the run's totals.

Each request ends with one outcome and a latency, recorded into per-outcome
log-bucketed histograms (``capsim.engine.histogram.LogHistogram``: quantiles within 0.5% relative
error) and exact sums. A SimPy process closes an interval every ``interval`` seconds
(and at the warm-up boundary and the horizon): it asks every component for its row,
then folds the interval into the totals if it lies after the warm-up. Memory does not
grow with the horizon beyond one row per interval.
"""
from __future__ import annotations

from math import ceil, log

import numpy as np

from capsim.models.request import OUTCOMES, TIMEOUT
from capsim.engine.histogram import LogHistogram, quantile_from_counts

__all__ = ["Metrics", "REL_ERR"]

REL_ERR = 0.005


class Metrics:
    """Records requests on the hot path; closes intervals; keeps the window's totals."""

    def __init__(self, kernel, interval: float, warmup: float, horizon: float, probes, outside=0.0):
        """``outside``: seconds every response spends outside the server (a float), or an
        endless iterator of such draws (one per response)."""
        self.kernel, self.interval, self.warmup, self.horizon = kernel, interval, warmup, horizon
        self.outside = outside if isinstance(outside, float) else 0.0
        self._outside = None if isinstance(outside, float) else outside
        self.probes = probes                      # callables (t0, t1) -> dict of columns
        proto = LogHistogram(rel_err=REL_ERR)
        self._inv, self._off, self._min, self._nb = proto.inv_log_gamma, proto.offset, proto.min_value, proto.nbuckets
        n = len(OUTCOMES)
        self.hist = [[0] * self._nb for _ in range(n)]   # this interval, per outcome
        self.count = [0] * n
        self.lat_sum = [0.0] * n
        self.arrivals = 0
        self.in_system = 0
        self._area, self._t = 0.0, kernel.now
        self.total_hist = np.zeros((n, self._nb), dtype=np.int64)   # after warm-up
        self.total_count = np.zeros(n, dtype=np.int64)
        self.total_lat = np.zeros(n)
        self.total_arrivals = 0
        self.in_system_at_warmup = 0
        self.pool_wait = LogHistogram(rel_err=REL_ERR)   # pools record into it (bucket 0 = no wait)
        self.total_pool_wait = LogHistogram(rel_err=REL_ERR)
        self.rows: list[dict] = []
        self.last_latency = 0.0                   # the latency recorded last (s)
        self.on_warmup: list = []                 # hooks called when the warm-up's last interval closes

    # -- hot path -------------------------------------------------------------
    def arrive(self, req=None) -> None:
        now = self.kernel.now
        self._area += self.in_system * (now - self._t)
        self._t = now
        self.in_system += 1
        self.arrivals += 1

    def done(self, req, outcome: int) -> bool:
        """Record ``req``'s outcome; False if it was already recorded (a timed-out request)."""
        if req.done:
            return False
        req.done = True
        now = self.kernel.now
        self._area += self.in_system * (now - self._t)
        self._t = now
        self.in_system -= 1
        lat = now - req.t0 + (self.outside if self._outside is None else next(self._outside))
        self.last_latency = lat                   # for watchers (Model.watch's on_done)
        if lat >= self._min:
            i = int(ceil(log(lat) * self._inv)) - self._off
            if i >= self._nb:
                i = self._nb - 1
        else:
            i = 0
        self.hist[outcome][i] += 1
        self.count[outcome] += 1
        self.lat_sum[outcome] += lat
        return True

    def timed_out(self, req, timeout: float) -> None:
        """The client gave up at ``t0 + timeout`` (recorded now: a sweep tick later at most)."""
        if not req.done:
            req.done = True
            self.done(_GaveUp(self.kernel.now - timeout - self.outside), TIMEOUT)   # latency exactly ``timeout``

    # -- intervals --------------------------------------------------------------
    def ticks(self) -> list[float]:
        n = int(ceil(self.horizon / self.interval - 1e-9))
        pts = {min(k * self.interval, self.horizon) for k in range(1, n + 1)}
        if 0 < self.warmup < self.horizon:
            pts.add(self.warmup)
        return sorted(pts)

    def process(self, env):
        """SimPy process: closes each interval at its end."""
        t0 = env.now
        for t in self.ticks():
            yield env.timeout(t - env.now)
            self.close(t0, t)
            t0 = t

    def close(self, t0: float, t1: float) -> None:
        self._area += self.in_system * (t1 - self._t)
        self._t = t1
        dt = t1 - t0
        hist = np.array(self.hist, dtype=np.int64)
        all_counts = hist.sum(axis=0)
        done = int(all_counts.sum())
        p50, p95, p99 = quantile_from_counts(all_counts, [0.5, 0.95, 0.99], rel_err=REL_ERR, min_value=self._min)
        row = {"t_start": t0, "t_end": t1, "warmup": t1 <= self.warmup, "arrivals": self.arrivals}
        row.update({f"n_{name}": c for name, c in zip(OUTCOMES, self.count)})
        row.update({
            "completed": done,
            "latency_mean_ms": 1000 * sum(self.lat_sum) / done if done else float("nan"),
            "latency_p50_ms": 1000 * p50, "latency_p95_ms": 1000 * p95, "latency_p99_ms": 1000 * p99,
            "in_system": self.in_system, "in_system_mean": self._area / dt,
        })
        for probe in self.probes:
            row.update(probe(t0, t1))
        self.rows.append(row)
        if not row["warmup"]:
            self.total_hist += hist
            self.total_count += np.array(self.count, dtype=np.int64)
            self.total_lat += np.array(self.lat_sum)
            self.total_arrivals += self.arrivals
            self.total_pool_wait.merge(self.pool_wait)
        elif t1 == self.warmup:
            self.in_system_at_warmup = self.in_system
            for hook in self.on_warmup:
                hook()
        for h in self.hist:
            h[:] = [0] * self._nb
        self.count = [0] * len(OUTCOMES)
        self.lat_sum = [0.0] * len(OUTCOMES)
        self.arrivals = 0
        self._area = 0.0
        self.pool_wait.reset()

    # -- totals ---------------------------------------------------------------
    def latency_ms(self, outcomes=None) -> dict:
        idx = range(len(OUTCOMES)) if outcomes is None else [OUTCOMES.index(o) for o in outcomes]
        counts = self.total_hist[list(idx)].sum(axis=0)
        n = int(self.total_count[list(idx)].sum())
        qs = quantile_from_counts(counts, [0.5, 0.95, 0.99], rel_err=REL_ERR, min_value=self._min)
        mean = float(self.total_lat[list(idx)].sum()) / n if n else float("nan")
        return {"mean": 1000 * mean, "p50": 1000 * float(qs[0]), "p95": 1000 * float(qs[1]),
                "p99": 1000 * float(qs[2]), "count": n}


class _GaveUp:
    """Stands in for a timed-out request: what ``done`` reads."""
    __slots__ = ("t0", "done")

    def __init__(self, t0: float):
        self.t0, self.done = t0, False
