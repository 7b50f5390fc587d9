"""Per-interval figures of a backtest, measured and simulated alike.

A request belongs to the interval its arrival (the log's ``t``; the simulated request's arrival)
falls in; intervals are ``interval`` long from the start of the log's measured window, the
last one cut at the window's end. Per interval: arrivals and their rate, and of the requests
that got an answer, the mean, p95 and p99 latency and the error share (non-ok outcomes).
Quantiles are inverted-CDF sample quantiles (measured: exact; simulated: within 0.5%,
capsim's latency histograms).
"""
from __future__ import annotations

import math

import numpy as np

from capsim.engine.histogram import LogHistogram
from capsim.engine.metrics import REL_ERR
from capsim.models.request import OK, TIMEOUT

__all__ = ["edges_of", "measured_intervals", "IntervalRecorder", "STATS"]

STATS = ("rate", "mean_ms", "p95_ms", "p99_ms", "errors")


def edges_of(start: float, end: float, interval: float) -> list[float]:
    """Interval edges from ``start`` to ``end`` (the last interval may be shorter)."""
    n = max(1, math.ceil((end - start) / interval - 1e-9))
    return [start + k * interval for k in range(n)] + [end]


def _stats(count: int, lat: np.ndarray, errors: int, span: float) -> dict:
    answered = len(lat)
    if not answered:
        return {"rate": count / span, "mean_ms": math.nan, "p95_ms": math.nan, "p99_ms": math.nan,
                "errors": math.nan, "answered": 0, "arrivals": count}
    q95, q99 = np.quantile(lat, [0.95, 0.99], method="inverted_cdf")
    return {"rate": count / span, "mean_ms": 1000 * float(lat.mean()), "p95_ms": 1000 * float(q95),
            "p99_ms": 1000 * float(q99), "errors": errors / answered, "answered": answered, "arrivals": count}


def measured_intervals(frame, edges: list[float]) -> list[dict]:
    """Per interval, and as a last entry the whole window ("all"), from a RequestLog frame."""
    t, lat, ok = frame["t"].to_numpy(), frame["latency"].to_numpy(), (frame["outcome"] == "ok").to_numpy()
    out = []
    last = len(edges) - 2
    bounds = [(a, b, i == last) for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))] + [(edges[0], edges[-1], True)]
    for a, b, closed in bounds:                # [a, b), the last interval and the window [a, b]
        inside = (t >= a) & ((t <= b) if closed else (t < b))
        sel = inside & np.isfinite(lat)
        out.append(_stats(int(inside.sum()), lat[sel], int((sel & ~ok).sum()), b - a))
    return out


class IntervalRecorder:
    """Watches a Model (``attach`` before ``run``): per interval of arrival, the same figures
    as ``measured_intervals`` from the simulated requests (bounded memory: one histogram each)."""

    def __init__(self, edges: list[float]):
        self.edges = list(edges)
        n = len(edges) - 1
        self.arrivals = [0] * (n + 1)
        self.hists = [LogHistogram(rel_err=REL_ERR) for _ in range(n + 1)]
        self.sums = [0.0] * (n + 1)
        self.errors = [0] * (n + 1)

    def _index(self, t: float) -> int:
        e = self.edges
        if t < e[0] or t > e[-1]:
            return -1
        i = int(np.searchsorted(e, t, side="right")) - 1
        return min(i, len(e) - 2)

    def attach(self, model) -> "IntervalRecorder":
        self._metrics = model.metrics
        model.watch(on_done=self._done, on_arrive=self._arrive)
        return self

    def _arrive(self, req) -> None:
        i = self._index(req.t0)
        if i >= 0:
            self.arrivals[i] += 1
            self.arrivals[-1] += 1

    def _done(self, req, outcome: int, now: float) -> None:
        i = self._index(req.t0)
        if i < 0:
            return
        lat = now - req.t0 if outcome == TIMEOUT else self._metrics.last_latency   # a timeout: before it is recorded
        for j in (i, -1):
            self.hists[j].add(lat)
            self.sums[j] += lat
            self.errors[j] += outcome != OK

    def intervals(self) -> list[dict]:
        e = self.edges
        spans = [b - a for a, b in zip(e[:-1], e[1:])] + [e[-1] - e[0]]
        out = []
        for n, h, s, err, span in zip(self.arrivals, self.hists, self.sums, self.errors, spans):
            answered = h.count
            if not answered:
                out.append(_stats(n, np.array([]), 0, span))
                continue
            p95, p99 = h.quantiles([0.95, 0.99])
            out.append({"rate": n / span, "mean_ms": 1000 * s / answered, "p95_ms": 1000 * p95, "p99_ms": 1000 * p99,
                        "errors": err / answered, "answered": answered, "arrivals": n})
        return out
