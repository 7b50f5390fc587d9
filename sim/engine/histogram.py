"""Streaming statistics with bounded memory: a log-bucketed histogram and running moments.

``LogHistogram`` is DDSketch-like: with gamma = (1 + rel_err) / (1 - rel_err), bucket
``i >= 1`` holds ``gamma**(k-1) < x <= gamma**k`` where ``k = i + offset``, and reports
``2 * gamma**k / (gamma + 1)``. Hence quantiles are within rel_err relative error of the
exact inverted-CDF sample quantile (for values in [min_value, max_value]), i.e. of
``numpy.quantile(x, q, method="inverted_cdf")``. Bucket 0 holds values below min_value
(including 0 and negatives) and reports 0.0; values above max_value are clamped into the
last bucket (reported as about max_value). Memory is ``nbuckets`` ints, whatever the count
(about 2,500 buckets for the defaults).
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

__all__ = ["LogHistogram", "RunningMoments", "quantile_from_counts", "row_quantiles"]


def _layout(rel_err: float, min_value: float) -> tuple[float, int]:
    """(log(gamma), offset) so that ``min_value`` maps to bucket 1."""
    if not 0 < rel_err < 1:
        raise ValueError(f"rel_err must be in (0, 1), got {rel_err!r}")
    if not min_value > 0:
        raise ValueError(f"min_value must be > 0, got {min_value!r}")
    log_gamma = math.log((1 + rel_err) / (1 - rel_err))
    return log_gamma, math.ceil(math.log(min_value) * (1 / log_gamma)) - 1


def quantile_from_counts(counts: Sequence[int] | np.ndarray, q: float | Sequence[float], *,
                         rel_err: float, min_value: float) -> float | np.ndarray:
    """Inverted-CDF quantile(s) from bucket counts laid out as ``LogHistogram(rel_err, min_value)``.

    Bucket chosen: the first whose cumulative count reaches ``max(1, ceil(q * count))``;
    with expected (fractional) counts, as the fast mode records, the first that reaches
    ``q * count``. Returns nan (for every q) when the counts are all zero.
    """
    log_gamma, offset = _layout(rel_err, min_value)
    qs = np.asarray(q, dtype=np.float64)
    if np.any((qs < 0) | (qs > 1)) or np.any(np.isnan(qs)):
        raise ValueError(f"quantiles must be in [0, 1], got {q!r}")
    arr = np.asarray(counts)
    whole = arr.dtype.kind in "iub" or not arr.size
    cum = np.cumsum(arr.astype(np.int64 if whole else np.float64))
    total = cum[-1] if cum.size else 0
    if total <= 0:
        out = np.full(qs.shape, np.nan)
    else:
        rank = np.maximum(np.ceil(qs * total), 1) if whole else np.maximum(qs * total, 1e-12 * total)
        i = np.searchsorted(cum, rank, side="left")
        gamma = math.exp(log_gamma)
        out = np.where(i == 0, 0.0, 2 * np.exp((i + offset) * log_gamma) / (gamma + 1))
    return float(out) if out.ndim == 0 else out


def row_quantiles(counts: np.ndarray, q: float, *, rel_err: float, min_value: float) -> np.ndarray:
    """``quantile_from_counts(row, q)`` of every row of a 2-D array of bucket counts, at once
    (nan for an empty row)."""
    log_gamma, offset = _layout(rel_err, min_value)
    if not 0 <= q <= 1:
        raise ValueError(f"quantiles must be in [0, 1], got {q!r}")
    cum = np.cumsum(np.asarray(counts, dtype=np.int64), axis=1)
    total = cum[:, -1]
    rank = np.maximum(np.ceil(q * total), 1)
    i = (cum < rank[:, None]).sum(axis=1)            # the first bucket whose cumulative count reaches rank
    gamma = math.exp(log_gamma)
    out = np.where(i == 0, 0.0, 2 * np.exp((i + offset) * log_gamma) / (gamma + 1))
    return np.where(total > 0, out, np.nan)


class LogHistogram:
    """Log-bucketed latency histogram (seconds); see the module docstring for guarantees.

    ``counts``, ``inv_log_gamma``, ``offset``, ``min_value``, ``max_value`` and ``nbuckets``
    are plain attributes so a hot loop may inline ``index``; never rebind ``counts``.
    """

    def __init__(self, rel_err: float = 0.005, min_value: float = 1e-6, max_value: float = 1e5):
        if not max_value > min_value:
            raise ValueError(f"max_value must exceed min_value, got {min_value!r}..{max_value!r}")
        self.rel_err, self.min_value, self.max_value = rel_err, min_value, max_value
        log_gamma, self.offset = _layout(rel_err, min_value)
        self.inv_log_gamma = 1 / log_gamma
        self.nbuckets = math.ceil(math.log(max_value) * self.inv_log_gamma) - self.offset + 1
        self.counts: list[int] = [0] * self.nbuckets

    def index(self, x: float) -> int:
        if x < self.min_value:
            return 0
        if x >= self.max_value:
            return self.nbuckets - 1
        return math.ceil(math.log(x) * self.inv_log_gamma) - self.offset

    def add(self, x: float) -> None:
        self.counts[self.index(x)] += 1

    def add_many(self, xs: Iterable[float] | np.ndarray) -> None:
        x = np.asarray(xs, dtype=np.float64).ravel()
        if np.isnan(x).any():
            raise ValueError("cannot add NaN to a LogHistogram")
        logs = np.log(np.clip(x, self.min_value, self.max_value))
        idx = np.clip(np.ceil(logs * self.inv_log_gamma).astype(np.int64) - self.offset,
                      1, self.nbuckets - 1)
        idx[x < self.min_value] = 0
        idx[x >= self.max_value] = self.nbuckets - 1
        self._add_counts(np.bincount(idx, minlength=self.nbuckets))

    def _add_counts(self, extra: np.ndarray | list[int]) -> None:
        self.counts[:] = (np.asarray(self.counts) + np.asarray(extra)).tolist()   # expected counts stay floats

    def merge(self, other: LogHistogram) -> LogHistogram:
        """Add ``other``'s counts into this histogram (in place); parameters must match."""
        mine = (self.rel_err, self.min_value, self.max_value)
        theirs = (other.rel_err, other.min_value, other.max_value)
        if mine != theirs:
            raise ValueError(f"cannot merge histograms with (rel_err, min, max) {mine} and {theirs}")
        self._add_counts(other.counts)
        return self

    @property
    def count(self) -> int:
        return sum(self.counts)

    def quantile(self, q: float) -> float:
        return quantile_from_counts(self.counts, q, rel_err=self.rel_err, min_value=self.min_value)

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        return quantile_from_counts(self.counts, list(qs), rel_err=self.rel_err,
                                    min_value=self.min_value).tolist()

    def reset(self) -> None:
        self.counts[:] = [0] * self.nbuckets

    def copy(self) -> LogHistogram:
        new = LogHistogram(self.rel_err, self.min_value, self.max_value)
        new.counts[:] = self.counts
        return new


class RunningMoments:
    """Count, mean and population variance (ddof=0) by Welford; mergeable (Chan et al.)."""

    def __init__(self) -> None:
        self.count, self._mean, self._m2 = 0, 0.0, 0.0

    def add(self, x: float) -> None:
        self.count += 1
        d = x - self._mean
        self._mean += d / self.count
        self._m2 += d * (x - self._mean)

    def merge(self, other: RunningMoments) -> RunningMoments:
        n = self.count + other.count
        if not self.count:
            self.count, self._mean, self._m2 = other.count, other._mean, other._m2
        elif other.count:
            d = other._mean - self._mean
            self._m2 += other._m2 + d * d * self.count * other.count / n
            self._mean += d * other.count / n
            self.count = n
        return self

    @property
    def mean(self) -> float:
        return self._mean if self.count else math.nan

    @property
    def variance(self) -> float:
        return self._m2 / self.count if self.count else math.nan
