"""Latency distributions of the fast mode, placed into the log-bucketed histograms.

Each path of a request (an endpoint and its fate: served from memory, through the
database, rejected, timed out at the pool...) has a latency whose mean and variance
are sums over its parts. It is placed into the metrics histogram as a gamma
distribution with those two moments (exact for an M/M/1 sojourn, a good fit for sums of
waits and service times), as expected counts per bucket, so quantiles are read from the
histogram as the request level does.

A gamma with shape k and scale theta is ``theta x G_k``; in log space the scale only
shifts it. ``GammaPlacer`` tabulates the CDF of ``ln G_k`` on a grid of shapes and a
sub-bucket grid of positions once, so placing a distribution is a table slice and a
difference (the shape is rounded to the grid: ~2.5% apart; positions to a quarter bucket).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["GammaPlacer", "tail_beyond", "shape_scale"]

K_MIN, K_MAX, K_POINTS, SUB = 0.2, 2.0e4, 240, 4
TAIL = 1e-7


def shape_scale(mean, var):
    """(k, theta) of the gamma with this mean and variance (arrays)."""
    mean = np.asarray(mean, dtype=float)
    var = np.maximum(np.asarray(var, dtype=float), 1e-30)
    return np.clip(mean * mean / var, K_MIN, None), var / np.maximum(mean, 1e-300)


def tail_beyond(mean, var, limit: float):
    """P(latency > limit) under the gamma fit (0 where the mean is 0)."""
    from scipy.special import gammaincc
    k, theta = shape_scale(mean, var)
    return np.where(np.asarray(mean) > 0, gammaincc(k, limit / theta), 0.0)


class GammaPlacer:
    """Expected bucket counts of gamma distributions in a ``LogHistogram`` layout."""

    _tables: dict = {}

    def __init__(self, inv_log_gamma: float, offset: int, nbuckets: int):
        self.log_gamma, self.offset, self.nb = 1.0 / inv_log_gamma, offset, nbuckets
        self.delta = self.log_gamma / SUB
        key = round(self.log_gamma, 12)
        if key not in self._tables:             # shapes' tables, built when first needed
            self._tables[key] = ([None] * K_POINTS, [None] * K_POINTS)
        self.log_k = np.linspace(math.log(K_MIN), math.log(K_MAX), K_POINTS)
        self.lows, self.cdfs = self._tables[key]

    def _table(self, j: int):
        if self.cdfs[j] is None:
            from scipy.special import gammainc, gammaincinv
            k = math.exp(self.log_k[j])
            lo = math.log(max(gammaincinv(k, TAIL), 1e-300))
            hi = math.log(gammaincinv(k, 1 - TAIL))
            m = int(math.ceil((hi - lo) / self.delta)) + 1
            self.lows[j] = lo
            self.cdfs[j] = gammainc(k, np.exp(lo + self.delta * np.arange(m)))
        return self.lows[j], self.cdfs[j]

    def bucket(self, x: float) -> int:
        if x <= 0:
            return 0
        i = int(math.ceil(math.log(x) / self.log_gamma)) - self.offset
        return min(max(i, 0), self.nb - 1)

    def place(self, row: np.ndarray, count: float, mean: float, var: float) -> None:
        """Add ``count`` requests whose latency has this mean and variance into ``row``."""
        if count <= 0:
            return
        if mean <= 0 or var <= mean * mean / 4e4:
            row[self.bucket(mean)] += count        # (near) deterministic: one bucket
            return
        k = mean * mean / var
        j = int(round((math.log(max(k, K_MIN)) - self.log_k[0]) / (self.log_k[1] - self.log_k[0])))
        j = min(max(j, 0), K_POINTS - 1)
        theta = mean / math.exp(self.log_k[j])     # keep the mean exact on the rounded shape
        low, table = self._table(j)
        sub = SUB
        c = int(round(self.offset * sub - (math.log(theta) + low) / self.delta))
        i_min = -((c) // sub) if c <= 0 else -(c // sub)
        while sub * i_min + c < 0:
            i_min += 1
        i_max = (len(table) - 1 - c) // sub
        if i_max < i_min:
            row[self.bucket(mean)] += count
            return
        edges = table[sub * i_min + c: sub * i_max + c + 1: sub]
        masses = np.empty(len(edges) + 1)
        masses[0] = edges[0]
        masses[1:-1] = np.diff(edges)
        masses[-1] = 1.0 - edges[-1]
        start = i_min
        if start < 0:
            skip = -start
            if skip >= len(masses):
                row[0] += count
                return
            masses[skip] += masses[:skip].sum()
            masses, start = masses[skip:], 0
        end = start + len(masses)
        if end > self.nb:
            keep = self.nb - start
            if keep <= 0:
                row[self.nb - 1] += count
                return
            masses[keep - 1] += masses[keep:].sum()
            masses = masses[:keep]
        row[start:start + len(masses)] += count * masses
