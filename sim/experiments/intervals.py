"""Confidence intervals over replications: means, paired and unpaired differences.

Summaries are flattened to ``{"latency_ms.p95": 31.2, "requests.ok": 4281, ...}``
(every numeric leaf; booleans become 0/1, so their mean is a share of replications),
then each metric gets a Student-t 95% interval over the replications. Differences
between two scenarios use the paired t-test when the replications share seeds (common
random numbers) and Welch's unpaired test when they do not. The intervals and p-values
are scipy's (``ttest_1samp``, ``ttest_rel``, ``ttest_ind(equal_var=False)`` and their
``confidence_interval()``).

Degenerate cases give numbers, never NaN: differences that are all exactly 0 report
diff 0, CI [0, 0] and p-value 1.0; differences that are all the same non-zero value
report that value, CI [d, d] and p-value 0.0. Fewer than two values: CI and p-value
``None``.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["flatten", "metrics_of", "mean_ci", "paired_diff", "unpaired_diff", "NON_METRICS", "CONFIDENCE", "clean"]

CONFIDENCE = 0.95
# Summary leaves that describe the run rather than measure it (or vary with the machine).
NON_METRICS = {"seed", "wall_seconds", "simulated_seconds", "warmup_seconds", "measured_seconds",
               "latency_rel_err"}


def flatten(summary: dict, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested summary as ``{"a.b": float}`` (None -> NaN, bool -> 0/1)."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, bool):
            out[name] = float(value)
        elif isinstance(value, (int, float, np.integer, np.floating)):
            out[name] = float(value)
        elif value is None:
            out[name] = math.nan
    return out


def metrics_of(flat: dict[str, float]) -> dict[str, float]:
    """``flat`` without the non-metric leaves (seed, wall time, the run's own settings)."""
    return {k: v for k, v in flat.items() if k not in NON_METRICS}


def _finite(values) -> np.ndarray:
    a = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return a[np.isfinite(a)]


def _stats():
    from scipy import stats     # here, not at import: scipy.stats takes ~0.6 s to import
    return stats


def _test(name: str, *samples, **options):
    """``scipy.stats.<name>(*samples)``, without its precision-loss warning for nearly equal
    values (exactly equal ones never get here: their intervals are the value itself)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return getattr(_stats(), name)(*samples, **options)


def _interval(test) -> tuple[float, float]:
    """(low, high) of a scipy t-test result's 95% confidence interval."""
    ci = test.confidence_interval(CONFIDENCE)
    return float(ci.low), float(ci.high)


def mean_ci(values) -> dict:
    """{mean, ci_low, ci_high, half_width, n} over the finite values (Student t, 95%:
    ``scipy.stats.ttest_1samp(...).confidence_interval()``)."""
    a = _finite(values)
    n = len(a)
    if n == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "half_width": None, "n": 0}
    mean = float(a.mean())
    if n == 1:
        return {"mean": mean, "ci_low": None, "ci_high": None, "half_width": None, "n": 1}
    if np.all(a == a[0]):             # no spread: t is undefined, the interval is the value
        return {"mean": mean, "ci_low": mean, "ci_high": mean, "half_width": 0.0, "n": n}
    low, high = _interval(_test("ttest_1samp", a, 0.0))
    half = (high - low) / 2
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "half_width": half, "n": n}


def _paired(values) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def paired_diff(a, b) -> dict:
    """B - A over pairs where both are finite: mean difference, 95% CI and p-value of the
    paired t-test (``scipy.stats.ttest_rel``)."""
    x, y = _paired(a), _paired(b)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    d = y - x
    out = {"a": _mean(x), "b": _mean(y), "method": "paired t"}
    n = len(d)
    if n == 0:
        return {**out, "diff": None, "ci_low": None, "ci_high": None, "half_width": None, "p_value": None, "n": 0}
    diff = float(d.mean())
    if np.all(d == d[0]) and (n > 1 or d[0] == 0):   # no spread: t is undefined, the answer is not
        p = 1.0 if d[0] == 0 else 0.0
        return {**out, "diff": diff, "ci_low": diff, "ci_high": diff, "half_width": 0.0, "p_value": p, "n": n}
    if n == 1:
        return {**out, "diff": diff, "ci_low": None, "ci_high": None, "half_width": None, "p_value": None, "n": 1}
    test = _test("ttest_rel", y, x)
    low, high = _interval(test)
    return {**out, "diff": diff, "ci_low": low, "ci_high": high, "half_width": (high - low) / 2,
            "p_value": float(test.pvalue), "n": n}


def unpaired_diff(a, b) -> dict:
    """B - A for independent samples: Welch's t interval and test
    (``scipy.stats.ttest_ind(..., equal_var=False)``)."""
    x, y = _finite(a), _finite(b)
    out = {"a": _mean(x), "b": _mean(y), "method": "Welch t"}
    n = min(len(x), len(y))
    if n == 0:
        return {**out, "diff": None, "ci_low": None, "ci_high": None, "half_width": None, "p_value": None, "n": 0}
    diff = float(y.mean() - x.mean())
    if len(x) < 2 or len(y) < 2:
        return {**out, "diff": diff, "ci_low": None, "ci_high": None, "half_width": None, "p_value": None, "n": n}
    if np.all(x == x[0]) and np.all(y == y[0]):
        p = 1.0 if diff == 0 else 0.0
        return {**out, "diff": diff, "ci_low": diff, "ci_high": diff, "half_width": 0.0, "p_value": p, "n": n}
    test = _test("ttest_ind", y, x, equal_var=False)
    low, high = _interval(test)
    return {**out, "diff": diff, "ci_low": low, "ci_high": high, "half_width": (high - low) / 2,
            "p_value": float(test.pvalue), "n": n}


def _mean(a: np.ndarray):
    return float(a.mean()) if len(a) else None


def clean(obj):
    """Replace NaN/inf (and numpy scalars) for JSON: NaN -> None."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj
