"""Fit a service-time distribution to a sample: maximum likelihood among capsim's families.

Candidates (``scipy.stats`` fits, location fixed at 0): exponential, gamma and lognormal,
plus the constant when the sample has (almost) no spread. The one with the smallest AIC
(2k - 2 log L) is chosen; its Kolmogorov-Smirnov statistic is reported (the p-value is
optimistic: the parameters were estimated from the same sample). Each result carries
the sample size and the mean's 95% interval (Student t).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from capsim.models.distributions import Constant, Exponential, Gamma, LogNormal

__all__ = ["Fit", "fit_distribution", "fit_censored", "mean_interval", "frozen", "MIN_SAMPLES"]

MIN_SAMPLES = 20           # fewer values than this: no fit (the caller says how many it needs)
_Z99 = stats.norm.ppf(0.99)


@dataclass(frozen=True)
class Fit:
    """The chosen distribution (a capsim config object) and how well each candidate did."""
    dist: object
    family: str
    n: int
    mean: float
    mean_ci: tuple[float, float]
    ks: float
    ks_p: float
    aic: dict = field(default_factory=dict)        # family -> AIC of every candidate that could be fitted
    values: np.ndarray | None = field(default=None, repr=False, compare=False)   # the sample (for figures)

    def describe(self) -> str:
        lo, hi = self.mean_ci
        return (f"{self.family} (AIC among {', '.join(sorted(self.aic))}), n={self.n}, mean {self.mean:.6g} s "
                f"[95% CI {lo:.6g}, {hi:.6g}], KS D={self.ks:.3f} p={self.ks_p:.3g}")


def mean_interval(x: np.ndarray) -> tuple[float, float]:
    """The mean's 95% Student-t interval."""
    n = len(x)
    if n < 2:
        return (float("nan"), float("nan"))
    half = stats.t.ppf(0.975, n - 1) * float(np.std(x, ddof=1)) / math.sqrt(n)
    m = float(np.mean(x))
    return (m - half, m + half)


def _candidates(x: np.ndarray) -> dict:
    """family -> (capsim distribution, frozen scipy distribution, number of parameters)."""
    mean = float(np.mean(x))
    out = {"exponential": (Exponential(mean=mean), stats.expon(scale=mean), 1)}
    if np.all(x > 0):
        a, _, scale = stats.gamma.fit(x, floc=0)
        m, cv = a * scale, 1 / math.sqrt(a)
        out["gamma"] = (Gamma(mean=m, cv=cv), stats.gamma(a, scale=scale), 2)
        s, _, scale = stats.lognorm.fit(x, floc=0)
        if s < _Z99:        # capsim's lognormal (mean, p99) holds sigma below z_0.99
            m = scale * math.exp(s * s / 2)
            p99 = scale * math.exp(s * _Z99)
            out["lognormal"] = (LogNormal(mean=m, p99=p99), stats.lognorm(s, scale=scale), 2)
    return out


def fit_distribution(values) -> Fit:
    """The maximum-likelihood fit with the smallest AIC (values in seconds, all >= 0)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < MIN_SAMPLES:
        raise ValueError(f"{len(x)} values: a distribution fit needs at least {MIN_SAMPLES}")
    if np.any(x < 0):
        raise ValueError(f"{int(np.sum(x < 0))} negative durations: expected values >= 0")
    mean, ci = float(np.mean(x)), mean_interval(x)
    if float(np.std(x)) <= 1e-9 * max(mean, 1e-12):
        return Fit(Constant(value=mean), "constant", len(x), mean, ci, 0.0, 1.0, {"constant": float("nan")}, x)
    aic, fitted = {}, {}
    for family, (dist, frozen, k) in _candidates(x).items():
        ll = float(np.sum(frozen.logpdf(x)))
        if math.isfinite(ll):
            aic[family], fitted[family] = 2 * k - 2 * ll, (dist, frozen)
    best = min(aic, key=aic.get)
    dist, frozen = fitted[best]
    ks = stats.kstest(x, frozen.cdf)
    return Fit(dist, best, len(x), mean, ci, float(ks.statistic), float(ks.pvalue), aic, x)


def fit_censored(exact, lo, hi) -> Fit:
    """Maximum likelihood among the same families from exact values and interval-censored ones (each
    known only to lie in [lo, hi]: ``scipy.stats.CensoredData``), smallest AIC. The mean's interval is
    conservative: the fitted standard deviation over the square root of the exact values' count (as if
    the censored ones were not seen). KS is over the exact values."""
    x = np.asarray(exact, dtype=float)
    lo, hi = np.clip(np.asarray(lo, dtype=float), 0.0, None), np.asarray(hi, dtype=float)
    if len(lo) == 0:
        return fit_distribution(x)
    n = len(x) + len(lo)
    if n < MIN_SAMPLES or len(x) < 2:
        raise ValueError(f"{n} values ({len(x)} exact): a distribution fit needs at least {MIN_SAMPLES}, 2 exact")
    data = stats.CensoredData(uncensored=x, interval=np.column_stack([lo, np.maximum(hi, lo)]))
    aic, fitted = {}, {}
    for family, dist, k in (("exponential", stats.expon, 1), ("gamma", stats.gamma, 2), ("lognormal", stats.lognorm, 2)):
        if family != "exponential" and np.any(x <= 0):
            continue
        params = dist.fit(data, floc=0)
        fr = dist(*params)
        ll = float(np.sum(fr.logpdf(x)) + np.sum(np.log(np.maximum(fr.cdf(hi) - fr.cdf(lo), 1e-300))))
        capsim = _capsim(family, fr)
        if capsim is not None and math.isfinite(ll):
            aic[family], fitted[family] = 2 * k - 2 * ll, (capsim, fr)
    best = min(aic, key=aic.get)
    dist, fr = fitted[best]
    mean, sd = float(fr.mean()), float(fr.std())
    half = stats.t.ppf(0.975, len(x) - 1) * sd / math.sqrt(len(x))
    ks = stats.kstest(x, fr.cdf)
    return Fit(dist, best, n, mean, (mean - half, mean + half), float(ks.statistic), float(ks.pvalue), aic, x)


def _capsim(family: str, fr):
    """A frozen scipy exponential, gamma or lognormal as capsim's config (None: outside capsim's range)."""
    if family == "exponential":
        return Exponential(mean=float(fr.mean()))
    if family == "gamma":
        return Gamma(mean=float(fr.mean()), cv=float(fr.std() / fr.mean()))
    s = float(fr.kwds.get("s", fr.args[0] if fr.args else 0.0))
    if s >= _Z99:
        return None
    return LogNormal(mean=float(fr.mean()), p99=float(fr.ppf(0.99)))


def frozen(dist):
    """The ``scipy.stats`` distribution of a capsim exponential, gamma or lognormal (None: another kind)."""
    kind = getattr(dist, "dist", None)
    if kind == "exponential":
        return stats.expon(scale=dist.mean)
    if kind == "gamma":
        return stats.gamma(dist.shape, scale=dist.scale)
    if kind == "lognormal":
        return stats.lognorm(dist.sigma, scale=math.exp(dist.mu))
    return None
