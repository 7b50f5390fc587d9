"""Metrics: per-request outcomes and latencies, a time series, and the run's totals.

Each request ends with one outcome and a latency, recorded into log-bucketed histograms
(``capsim.engine.histogram.LogHistogram``: quantiles within 0.5% relative error) and
exact sums, one slot per (outcome, endpoint): ``outcome * endpoints + endpoint``. The hot
path appends each response's (slot, bucket) cell to a list; the interval close bins them
(``numpy.bincount``: its cost grows with the responses, not the buckets) and folds the slots into outcomes (``n_*``, server errors and rejections) and
endpoints (``latency_*_ms_<endpoint>``). A SimPy process closes an interval every
``interval`` seconds (and at the warm-up boundary): it asks every component for its row,
then folds the interval into the totals if it lies after the warm-up. The last interval
is closed by ``finish()`` once every event at the horizon has run (a request timed out by
the sweeper at exactly the horizon is then counted in it, not lost). Memory does not
grow with the horizon beyond one row per interval.
"""
from __future__ import annotations

import math
from math import ceil, log

import numpy as np

from capsim.models.request import OUTCOMES, REJECTED, SERVER_ERRORS, TIMEOUT
from capsim.engine.histogram import LogHistogram, quantile_from_counts, row_quantiles

__all__ = ["Metrics", "REL_ERR"]

REL_ERR = 0.005


class Metrics:
    """Records requests on the hot path; closes intervals; keeps the window's totals."""
    COUNTS = np.int64          # the fast mode (capsim.engine.flow) records expected counts: float64

    def __init__(self, kernel, interval: float, warmup: float, horizon: float, probes,
                 endpoints: tuple[str, ...] | list[str] = ("all",), outside=0.0):
        """``outside``: seconds every response spends outside the server (a float), or an
        endless iterator of such draws (one per response)."""
        self.kernel, self.interval, self.warmup, self.horizon = kernel, interval, warmup, horizon
        self.outside = outside if isinstance(outside, float) else 0.0
        self._outside = None if isinstance(outside, float) else outside
        self.probes = probes                      # callables (t0, t1) -> dict of columns
        proto = LogHistogram(rel_err=REL_ERR)
        self._inv, self._off, self._min, self._nb = proto.inv_log_gamma, proto.offset, proto.min_value, proto.nbuckets
        self.endpoints = list(endpoints)          # names, in the order of Request.endpoint
        self._ne = len(self.endpoints)
        n = len(OUTCOMES) * self._ne              # one slot per (outcome, endpoint): outcome * E + endpoint
        self.cells: list[int] = []                # this interval: slot * nbuckets + bucket, one per response
        self.lat_sum = [0.0] * n
        self._slots_n = n
        self.arrivals = 0
        self.in_system = 0
        self._area, self._t = 0.0, kernel.now
        self.total_hist = np.zeros((n, self._nb), dtype=self.COUNTS)   # after warm-up
        self.total_slot_count = np.zeros(n, dtype=self.COUNTS)
        self.total_lat = np.zeros(n)
        self.total_arrivals = 0
        self.in_system_at_warmup = 0
        self.pool_wait = LogHistogram(rel_err=REL_ERR)   # pools record into it (bucket 0 = no wait)
        self.total_pool_wait = LogHistogram(rel_err=REL_ERR)
        self.rows: list[dict] = []
        self._closed = kernel.now                 # end of the last closed interval
        self.last_latency = 0.0                   # the latency recorded last (s)
        self.on_warmup: list = []                 # hooks called when the warm-up's last interval closes
        self._server = [OUTCOMES.index(o) for o in SERVER_ERRORS]
        self._rejected = [OUTCOMES.index(o) for o in REJECTED]

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
            i = ceil(log(lat) * self._inv) - self._off
            if i >= self._nb:
                i = self._nb - 1
        else:
            i = 0
        k = outcome * self._ne + req.endpoint
        self.cells.append(k * self._nb + i)
        self.lat_sum[k] += lat
        return True

    def timed_out(self, req, timeout: float) -> None:
        """The client gave up at ``t0 + timeout`` (recorded now: a sweep tick later at most)."""
        if not req.done:
            req.done = True
            self.done(_GaveUp(self.kernel.now - timeout - self.outside, req.endpoint), TIMEOUT)   # latency exactly ``timeout``

    def keep_last_outside(self) -> None:
        """For request logs: remember each response's latency outside the server in ``last_outside``
        (costs nothing unless called: the draws pass through a remembering generator)."""
        self.last_outside = self.outside
        if self._outside is not None:
            source = self._outside

            def remembered():
                for x in source:
                    self.last_outside = x
                    yield x
            self._outside = remembered()

    # -- intervals --------------------------------------------------------------
    def ticks(self) -> list[float]:
        n = int(ceil(self.horizon / self.interval - 1e-9))
        pts = {min(k * self.interval, self.horizon) for k in range(1, n + 1)}
        if 0 < self.warmup < self.horizon:
            pts.add(self.warmup)
        return sorted(pts)

    def process(self, env):
        """SimPy process: closes each interval at its end, except the last (``finish``)."""
        for t in self.ticks()[:-1]:
            yield env.timeout(t - env.now)
            self.close(self._closed, t)
            self._closed = t

    def finish(self) -> None:
        """Close the last interval, at the horizon: call after every event at the horizon ran."""
        self.close(self._closed, self.horizon)

    def close(self, t0: float, t1: float) -> None:
        self._area += self.in_system * (t1 - self._t)
        self._t = t1
        dt = t1 - t0
        n, ne = self._slots_n, self._ne
        hist = self.interval_hist()
        all_counts = hist.sum(axis=0)
        count = hist.sum(axis=1)
        by_outcome = count.reshape(len(OUTCOMES), ne).sum(axis=1).tolist()
        done = sum(by_outcome)
        p50, p95, p99 = quantile_from_counts(all_counts, [0.5, 0.95, 0.99], rel_err=REL_ERR, min_value=self._min)
        server, rejected = (sum(by_outcome[o] for o in group) for group in (self._server, self._rejected))
        row = {"t_start": t0, "t_end": t1, "warmup": t1 <= self.warmup, "arrivals": self.arrivals}
        row.update({f"n_{name}": c for name, c in zip(OUTCOMES, by_outcome)})
        row.update({
            "completed": done, "server_errors": server, "rejected": rejected,
            "server_error_rate": server / done if done else float("nan"),
            "rejected_rate": rejected / done if done else float("nan"),
            "latency_mean_ms": 1000 * sum(self.lat_sum) / done if done else float("nan"),
            "latency_p50_ms": 1000 * p50, "latency_p95_ms": 1000 * p95, "latency_p99_ms": 1000 * p99,
            "in_system": self.in_system, "in_system_mean": self._area / dt,
        })
        if self._ne > 1:
            row.update(self._endpoint_columns(hist, count))
        for probe in self.probes:
            row.update(probe(t0, t1))
        self.rows.append(row)
        if not row["warmup"]:
            self.total_hist += hist
            self.total_slot_count += count
            self.total_lat += np.array(self.lat_sum)
            self.total_arrivals += self.arrivals
            self.total_pool_wait.merge(self.pool_wait)
        elif t1 == self.warmup:
            self.in_system_at_warmup = self.in_system
            for hook in self.on_warmup:
                hook()
        self.reset_hist()
        self.lat_sum = [0.0] * n
        self.arrivals = 0
        self._area = 0.0
        self.pool_wait.reset()

    def interval_hist(self) -> np.ndarray:
        """This interval's responses per (slot, latency bucket)."""
        n = self._slots_n
        return np.bincount(np.array(self.cells, dtype=np.int64), minlength=n * self._nb).reshape(n, self._nb)

    def reset_hist(self) -> None:
        """Empty this interval's responses."""
        self.cells = []

    @property
    def count(self) -> list[int]:
        """Responses per slot so far in this interval (slot = outcome * endpoints + endpoint)."""
        return np.bincount(np.array(self.cells, dtype=np.int64) // self._nb, minlength=self._slots_n).tolist()

    def _endpoint_columns(self, hist: np.ndarray, count: np.ndarray) -> dict:
        """``latency_mean_ms_<endpoint>`` and ``latency_p95_ms_<endpoint>`` of this interval (all outcomes)."""
        ne = self._ne
        counts = count.reshape(-1, ne).sum(axis=0).tolist()
        sums = np.array(self.lat_sum).reshape(-1, ne).sum(axis=0).tolist()
        p95 = row_quantiles(hist.reshape(-1, ne, self._nb).sum(axis=0), 0.95, rel_err=REL_ERR, min_value=self._min)
        cols = {}
        for e, name in enumerate(self.endpoints):
            cols[f"latency_mean_ms_{name}"] = 1000 * sums[e] / counts[e] if counts[e] else float("nan")
            cols[f"latency_p95_ms_{name}"] = 1000 * float(p95[e])
        return cols

    # -- totals ---------------------------------------------------------------
    @property
    def total_count(self) -> np.ndarray:
        """Responses per outcome after the warm-up (in the order of ``OUTCOMES``)."""
        return self.total_slot_count.reshape(len(OUTCOMES), self._ne).sum(axis=1)

    def _slots(self, outcomes=None, endpoints=None) -> list[int]:
        outs = range(len(OUTCOMES)) if outcomes is None else [OUTCOMES.index(o) for o in outcomes]
        eps = range(self._ne) if endpoints is None else [self.endpoints.index(e) for e in endpoints]
        return [o * self._ne + e for o in outs for e in eps]

    def latency_ms(self, outcomes=None, endpoints=None) -> dict:
        """mean, p50, p95, p99 (ms) and count of the responses with these outcomes and endpoints
        (None: all) after the warm-up."""
        idx = self._slots(outcomes, endpoints)
        counts = self.total_hist[idx].sum(axis=0)
        n = self.total_slot_count[idx].sum().item()
        qs = quantile_from_counts(counts, [0.5, 0.95, 0.99], rel_err=REL_ERR, min_value=self._min)
        mean = float(self.total_lat[idx].sum()) / n if n else float("nan")
        return {"mean": 1000 * mean, "p50": 1000 * float(qs[0]), "p95": 1000 * float(qs[1]),
                "p99": 1000 * float(qs[2]), "count": n}

    def histogram(self, outcomes=None, endpoints=None) -> np.ndarray:
        """Bucket counts after the warm-up (laid out as ``LogHistogram(REL_ERR)``) of these responses."""
        return self.total_hist[self._slots(outcomes, endpoints)].sum(axis=0)

    def histogram_rows(self) -> list[dict]:
        """The measured window's latency histogram, one row per non-empty bucket: its bounds
        (``lower_ms`` < latency <= ``upper_ms``), ``responses``, ``ok`` and ``endpoint:<name>`` counts."""
        every, ok = self.histogram(), self.histogram(["ok"])
        per = {name: self.histogram(endpoints=[name]) for name in self.endpoints}
        log_gamma = 1 / self._inv
        rows = []
        for i in np.flatnonzero(every).tolist():
            lower = 0.0 if i == 0 else 1000 * math.exp((i + self._off - 1) * log_gamma)
            upper = 1000 * self._min if i == 0 else 1000 * math.exp((i + self._off) * log_gamma)
            rows.append({"lower_ms": lower, "upper_ms": upper, "responses": every[i].item(), "ok": ok[i].item(),
                         **{f"endpoint:{n}": h[i].item() for n, h in per.items()}})
        return rows


class _GaveUp:
    """Stands in for a timed-out request: what ``done`` reads."""
    __slots__ = ("t0", "done", "endpoint")

    def __init__(self, t0: float, endpoint: int):
        self.t0, self.done, self.endpoint = t0, False, endpoint
