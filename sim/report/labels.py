"""Words, units and number formats for the reports' tables and tiles.

A metric key (``latency_ms.p95``, ``requests.rate_limited``, ``slo.violation_minutes``) gets
a label with its unit (``metric_label``), and a value a readable form in that unit
(``format_value``): rates as percentages, money with a dollar sign, counts with thousands
separators, no exponents (``7.6e-08`` of a rate reads ``0.00001%``; a tiny number reads
``< 0.001``).
"""
from __future__ import annotations

import math

from capsim.experiments.compare import HEADLINE

__all__ = ["metric_label", "metric_name", "metric_unit", "format_value", "format_number", "format_p", "COLUMN_LABELS"]

# (label, unit, scale) of metrics that are not in the comparison's HEADLINE
_KNOWN = {
    "throughput_rps": ("throughput", "req/s", 1.0),
    "error_rate": ("error rate", "%", 100.0),
    "instances.mean": ("instances, mean", "", 1.0),
    "instances.max": ("instances, max", "", 1.0),
    "cost_usd": ("cost of the measured window", "$", 1.0),
    "cost_compute_usd": ("compute cost of the measured window", "$", 1.0),
    "cost_per_1000_requests_usd": ("cost per 1000 requests", "$", 1.0),
    "cost_per_peak_user_usd": ("cost per peak user", "$", 1.0),
    "cpu_util_mean": ("CPU utilisation, mean", "%", 100.0),
    "memory_util_max": ("memory utilisation, max", "%", 100.0),
    "db_active_mean": ("database queries running, mean", "", 1.0),
    "scaling_events": ("scaling events", "", 1.0),
    "pool.wait_p95_ms": ("pool wait p95", "ms", 1.0),
    "slo.objectives_met": ("objectives met (share of runs)", "%", 100.0),
    "slo.threshold_minutes": ("minutes over monitoring thresholds", "min", 1.0),
    "slo.rejected_rate": ("rejected (429) share, SLO window", "%", 100.0),
}
_UNITS = (("_ms", "ms", 1.0), ("_usd", "$", 1.0), ("_rate", "%", 100.0), ("_minutes", "min", 1.0),
          ("_seconds", "s", 1.0), ("_util", "%", 100.0), ("_rps", "req/s", 1.0))
COLUMN_LABELS = {"mean": "mean", "ci_low": "95% CI low", "ci_high": "95% CI high", "half_width": "± half-width",
                 "n": "runs", "a": "A", "b": "B", "diff": "B − A", "p_value": "p-value", "verdict": "verdict"}


def _known(key: str) -> tuple[str, str, float] | None:
    if key in HEADLINE:
        label, unit, _, scale = HEADLINE[key]
        return label, unit, scale
    return _KNOWN.get(key)


def _guess(key: str) -> tuple[str, str, float]:
    parts = key.split(".")
    unit, scale = "", 1.0
    for i, part in enumerate(parts):
        for suffix, u, s in _UNITS:
            if part.endswith(suffix) or part == suffix[1:]:
                unit, scale = u, s
                parts[i] = part[: -len(suffix)] if part.endswith(suffix) else part
                break
    words = [p.replace("_", " ") for p in parts if p]
    return " · ".join(words), unit, scale


def metric_unit(key: str) -> tuple[str, float]:
    """(unit, scale from the stored value to the shown one) of ``key``."""
    _, unit, scale = _known(key) or _guess(key)
    return unit, scale


def metric_label(key: str) -> str:
    """``latency_ms.p95`` -> ``latency p95 (ms)``."""
    label, unit, _ = _known(key) or _guess(key)
    return f"{label} ({unit})" if unit else label


def metric_name(key: str) -> str:
    """``latency_ms.p95`` -> ``latency p95`` (no unit)."""
    return (_known(key) or _guess(key))[0]


def format_number(x, digits: int = 3) -> str:
    """1,234 / 12.3 / 0.0123 / < 0.001; never an exponent. None and NaN: ``n/a``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    x = float(x)
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:,.1f}".rstrip("0").rstrip(".")
    if a >= 0.001:
        text = f"{x:.{digits}g}"
        return text if "e" not in text else f"{x:.6f}".rstrip("0").rstrip(".")
    return "< 0.001" if x > 0 else "> −0.001"


def format_value(x, unit: str = "", scale: float = 1.0) -> str:
    """``x`` shown in ``unit`` (``%``: ``x * scale`` with up to 5 decimals, never an exponent)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    v = float(x) * scale
    if unit == "%":
        if v == 0:
            return "0%"
        nd = min(5, max(0, 2 - math.floor(math.log10(abs(v)))))     # 3 significant digits, at most 5 decimals
        text = f"{v:.{nd}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
        return f"{text}%" if text not in ("0", "-0") else ("< 0.00001%" if v > 0 else "> −0.00001%")
    if unit.startswith("$"):       # $ and $/month
        money = f"${v:,.2f}" if abs(v) >= 0.01 or v == 0 else f"${v:.4f}"
        return money.replace("$-", "−$") + unit[1:]
    text = format_number(v)
    return f"{text} {unit}" if unit and text != "n/a" else text


def format_p(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
